"""Convert ahead, time behind: exports run in separate processes, never on a core while it is timing.

Conversion (litert-torch ~1.3 s per block) is single-threaded CPU work; timing must own its core. When this process
is pinned to a subset of the machine's cores (``taskset -c 1``), one converter process is pinned to the remaining
cores and works through the jobs in order while the caller times the files already done; whenever the caller has to
wait for a file, a helper converter on the caller's own core converts a job from the back of the queue (the caller
blocks meanwhile, so nothing is timed while it runs). When there is no spare core, every export finishes before the
first file is handed out, by one converter per core this process may use (nothing is timed meanwhile, so they may
take them all: an unpinned `profile --quick` on 2 cores converts on both). Exports land in the cache either way, so
an interrupted run converts nothing twice. Converters die with the process that started them (kill -9 included), and
write their temp files under ``<cache>/.work-<pid>/``, removed by the next run once that pid is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed, wait
from pathlib import Path

from nse_hw.profilers.units import SUFFIX, ExportJob, cache_path, export_job

from nse_hw.errors import NseError
from nse_hw.progress import progress_bar

log = logging.getLogger(__name__)


MAX_CONVERTERS = 8  # ~700 MB each


def converters(spare: set[int], allowed: set[int]) -> int:
    """How many converter processes run at once: one ahead of the timer on the spare cores, or, with none to
    spare, one per allowed core (all before timing), at most :data:`MAX_CONVERTERS`."""
    return 1 if spare else max(1, min(MAX_CONVERTERS, len(allowed)))


def allowed_cpus() -> set[int]:
    """Cores this process may run on (all of them where the OS cannot say)."""
    if not hasattr(os, "sched_getaffinity"):
        return set(range(os.cpu_count() or 1))
    return set(os.sched_getaffinity(0))


def spare_cpus() -> set[int]:
    """Cores this process may not run on but the machine has: where conversion can go."""
    return set(range(os.cpu_count() or 1)) - allowed_cpus()


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORK_PREFIX = ".work-"  # cache/<WORK_PREFIX><pid>/: a converter's temp files, removed once that pid is gone


def _die_with(parent: int) -> None:
    """End this converter when ``parent`` dies, even by kill -9: it holds ~700 MB, and while it lives the
    multiprocessing resource tracker (which shares its pipe) lives too."""
    linux = sys.platform.startswith("linux")
    # SIGKILL is sent when the *thread* that spawned us exits: exported() spawns from its caller's thread.
    if not (linux and ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0):
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()  # elsewhere: poll (GIL permitting)
    if os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _work_dir(cache: Path, pid: int) -> Path:
    return cache / f"{WORK_PREFIX}{pid}"


def _init_worker(cpus: set[int], parent: int, cache: str) -> None:
    _die_with(parent)
    # Every temp file of this converter (ours and the exporters') goes under one folder named by our pid, so a
    # later run can tell a killed converter's leftovers from a live one's: see sweep_work_dirs.
    work = _work_dir(Path(cache), os.getpid())
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = tempfile.tempdir = str(work)
    import torch

    if cpus:
        os.sched_setaffinity(0, cpus)
    torch.set_num_threads(1)  # conversion is one core's work; the timer owns the others


def _run_job(job: ExportJob, runtime: str, cache: str) -> str:
    return str(export_job(job, runtime=runtime, cache=Path(cache), work=_work_dir(Path(cache), os.getpid())))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    with contextlib.suppress(OSError, IndexError):  # a zombie is dead, whoever has yet to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def sweep_work_dirs(cache: Path) -> list[Path]:
    """Remove the temp folders of converters that are no longer running (killed mid-export); returns them."""
    gone = []
    for d in Path(cache).glob(f"{WORK_PREFIX}*"):
        pid = d.name[len(WORK_PREFIX):]
        if d.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def exported(jobs: Sequence[ExportJob], *, runtime: str, cache: Path, convert_cpus: set[int] | None = None,
             progress: bool | None = None) -> Iterator[tuple[ExportJob, Path]]:
    """Yield ``(job, file)`` in the order of ``jobs``, each file exported (or found in the cache).

    ``convert_cpus``: cores for the converter, which then runs ahead of the caller; default :func:`spare_cpus`.
    While the caller waits for a file (and so times nothing), a second converter on the caller's own cores
    takes jobs from the back of the queue. An empty ``convert_cpus`` means no core to spare: everything is
    exported before the first file is yielded, under a progress bar of its own with the time left (the
    caller's bar cannot move meanwhile); ``progress`` False hides it (None: tqdm's default).
    """
    if runtime not in SUFFIX:
        raise NseError(f"unknown runtime {runtime!r}; known: {', '.join(sorted(SUFFIX))}")
    todo = [j for j in dict.fromkeys(jobs) if not cache_path(j, runtime=runtime, cache=cache).is_file()]
    if not todo:
        for job in jobs:
            yield job, cache_path(job, runtime=runtime, cache=cache)
        return
    sweep_work_dirs(cache)
    cpus = spare_cpus() if convert_cpus is None else set(convert_cpus)
    log.info("exporting %d of %d models to %s (%s)", len(todo), len(jobs), cache,
             f"converter on cores {sorted(cpus)}, ahead of timing" if cpus else "all before timing")
    ctx = mp.get_context("spawn")
    me = os.getpid()
    front = ProcessPoolExecutor(converters(cpus, allowed_cpus()), mp_context=ctx, initializer=_init_worker,
                                initargs=(cpus, me, str(cache)))
    helper = (ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker, initargs=(set(), me, str(cache)))
              if cpus else None)
    try:
        futures = {j: front.submit(_run_job, j, runtime, str(cache)) for j in todo}
        if not cpus:  # the slow path: all conversions first, with their own progress and time left
            bar = progress_bar(as_completed(futures.values()), total=len(futures), unit="model",
                               desc=f"export {len(futures)} {runtime} models first (no spare core)",
                               disable=None if progress is None else not progress)
            for _ in bar:
                pass
        back = list(todo)  # jobs the idle-time helper may still take, from the end
        for job in jobs:
            fut = futures.get(job)
            if fut is None:
                yield job, cache_path(job, runtime=runtime, cache=cache)
                continue
            while helper is not None and not fut.done() and _steal(back, job, futures, helper, runtime, cache):
                pass
            yield job, _result(job, fut)
    finally:
        for pool in (front, helper):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        sweep_work_dirs(cache)  # our converters have exited: their folders go too


def _steal(back: list[ExportJob], current: ExportJob, futures: dict[ExportJob, Future[str]],
           helper: ProcessPoolExecutor, runtime: str, cache: Path) -> bool:
    """Convert the last not-yet-started job on the helper and wait for it; False when none is left."""
    while back and back[-1] != current:
        job = back.pop()
        if not futures[job].cancel():  # the front converter has reached it, so it has reached all before it
            back.clear()
            return False
        log.debug("idle timer: converting %s on its own core", job.name)
        futures[job] = helper.submit(_run_job, job, runtime, str(cache))
        wait([futures[job]])
        return True
    return False


def _result(job: ExportJob, fut: Future[str]) -> Path:
    try:
        return Path(fut.result())
    except NseError as exc:
        raise NseError(f"{job.name}: {exc}") from exc
