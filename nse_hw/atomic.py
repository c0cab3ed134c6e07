"""Atomic file writes (temp file in the same directory, fsync, rename, fsync the directory) and run-directory locks.

A kill -9 at any moment leaves either the old file or the new one, never half of either; the temp file it may
leave behind is removed by the next process that locks the directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from nse_hw.errors import NseError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise NseError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; keep the usual permissions
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        fsync_dir(path.parent)  # the rename itself survives a power cut only once the directory is on disk
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def check_writable_dir(path: str | Path) -> Path:
    """Fail early (before long work) if ``path`` cannot hold our outputs."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NseError(f"cannot create output directory {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise NseError(f"output directory {path} is not writable")
    return path


LOCK_NAME = ".nse-hw.lock"
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # what atomic_write's mkstemp names look like


def is_bookkeeping(path: Path) -> bool:
    """The lock file and temp files of interrupted writes: not part of a run's content."""
    return path.name == LOCK_NAME or bool(_TEMP.match(path.name))


def remove_stale_temps(path: Path, *, subdirs: tuple[str, ...] = ()) -> list[Path]:
    """Delete temp files of interrupted atomic writes in ``path`` (and the named subdirectories); call it only
    while holding the directory's lock, when no write of ours can be in flight there."""
    found = [p for d in (path, *(path / s for s in subdirs)) if d.is_dir() for p in d.iterdir()
             if _TEMP.match(p.name)]
    for p in found:
        if p.is_dir() and not p.is_symlink():  # a staging directory (export)
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return found


@contextmanager
def exclusive_dir(path: str | Path, *, subdirs: tuple[str, ...] = ()) -> Iterator[Path]:
    """Hold an exclusive lock on the run directory ``path`` (created if absent, and removed again if the block
    fails before anything was written in it) for the block.

    A second process writing the same run is refused in one line instead of interleaving its files with ours.
    ``flock`` is released by the kernel when the process dies, so a kill -9 never leaves a stale lock (only the
    file, which the next holder reuses). Inside the lock the temp files of interrupted writes are removed.
    """
    created = not Path(path).exists()
    path = check_writable_dir(path)
    lock = path / LOCK_NAME
    fh = open(lock, "a+")  # noqa: SIM115 -- held open for the whole block
    held = failed = False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(lock).st_ino != os.fstat(fh.fileno()).st_ino:
                raise BlockingIOError  # the holder removed the file between our open and flock: another took it
        except (BlockingIOError, FileNotFoundError):
            fh.seek(0)
            holder = fh.read().strip()
            raise NseError(f"{path} is in use by another nse-hw process{f' (pid {holder})' if holder else ''}; "
                           f"wait for it to end or choose another output directory") from None
        held = True
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        remove_stale_temps(path, subdirs=subdirs)
        yield path
    except BaseException:
        failed = True
        raise
    finally:
        if held:  # still ours: remove it before the lock goes (a waiter that opened it sees the inode change)
            lock.unlink(missing_ok=True)
        fh.close()
        if created and failed and held:  # refused before writing anything: leave no empty directory behind
            with suppress(OSError):  # not empty: something was written, keep it
                path.rmdir()
