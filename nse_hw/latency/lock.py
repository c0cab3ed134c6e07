"""The exclusive lock every writer of a latency table holds (``flock`` on ``.<name>.lock`` beside it), so that
several processes (a running ``profile``, ``tables import``, ``latency calibrate``) can write one table; what each
writes is merged with the file under the lock (:func:`nse_hw.latency.table.merge_tables`)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from nse_hw.errors import NseError

_HELD: dict[Path, int] = {}  # lock files this process holds -> nesting depth (a save inside an update)


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


@contextmanager
def table_lock(path: str | Path) -> Iterator[None]:
    """Hold the exclusive advisory lock of table ``path`` (``flock`` on ``.<name>.lock`` beside it).

    Re-entrant within a process. On entry, temp files that killed writers left beside the table are removed:
    every writer of the table holds this lock, so any that exist now are stale.
    """
    lock = lock_path(path).resolve()
    if lock in _HELD:
        _HELD[lock] += 1
        try:
            yield
        finally:
            _HELD[lock] -= 1
        return
    fd = _acquire(lock)
    _HELD[lock] = 1
    try:
        _sweep(Path(path))
        yield
    finally:
        del _HELD[lock]
        with suppress(OSError):
            os.unlink(lock)  # before unlocking: a waiter holding the old inode sees it is gone and retries
        os.close(fd)


def _acquire(lock: Path) -> int:
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise NseError(f"cannot lock {lock}: {exc.strerror or exc}") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st, now = os.fstat(fd), os.stat(lock)
            if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed it while we waited: lock the new one


def _sweep(path: Path) -> None:
    for pattern in (f".{path.name}.*.tmp", f".{path.name}.probe", f"..{path.name}.probe.*.tmp"):
        for stale in path.parent.glob(pattern):
            with suppress(OSError):
                stale.unlink()
