"""How many intra-op threads torch may use, and how a run keeps its count.

torch's default is one thread per core of the machine. Two such processes on this 2-core host ran a retrain
step 45x slower than one alone (OpenMP threads spin at every barrier while their partner waits for a core);
with one thread each, each ran at ~0.8x of quiet speed. So a process takes the cores it may use (its affinity
mask) split over the processes torchrun started beside it, and outside torchrun no more than torch's own default
(OMP_NUM_THREADS); the CLI also shares them with the other nse-hw jobs running there (nse_hw.cpushare). The
count also changes the numbers (reduction order), so it is part of a run: recorded at the start, kept on --resume,
never changed while a run goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)


def auto_threads(*, cores: int, local_world_size: int) -> int:
    """Intra-op threads for one process: its usable cores split evenly over the processes torchrun started on
    this machine, at least 1 (2 cores, 1 process: 2; 2 cores, 2 processes: 1 each; 8 cores, 3 processes: 2)."""
    return max(1, cores // max(1, local_world_size))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: taskset, cgroup cpusets), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_world_size(env: Mapping[str, str] = os.environ) -> int:
    """Processes torchrun started on this machine ($LOCAL_WORLD_SIZE; 1 outside torchrun)."""
    try:
        return max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def default_threads(env: Mapping[str, str] = os.environ) -> int:
    """:func:`auto_threads` for this process. Outside torchrun also no more than torch's own count: its default
    honours OMP_NUM_THREADS, and a program that runs a command in-process may have set it lower. Under torchrun
    the split alone decides (torchrun sets OMP_NUM_THREADS=1 for every job, whatever the machine)."""
    n = auto_threads(cores=usable_cores(), local_world_size=local_world_size(env))
    return n if "LOCAL_WORLD_SIZE" in env else min(n, torch.get_num_threads())


def fixed_threads(*, given: int | None, recorded: int | None, resume: bool) -> int | None:
    """The count a run must use whatever else runs on the machine (see :func:`run_threads`): ``given``, else
    ``recorded``; on --resume the record first. None: the automatic choice decides."""
    for name, value in (("--threads", given), ("threads", recorded)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return (recorded if recorded is not None else given) if resume else (given or recorded)


def run_threads(*, given: int | None, recorded: int | None, resume: bool, auto: int) -> tuple[int, str | None]:
    """The thread count a run uses, and a message to show (None: nothing to say).

    A new run: ``given`` (--threads), else ``recorded`` (its config file), else ``auto``. A resumed run keeps
    its recorded count, because the count changes the result: a different ``given`` is ignored with a warning.
    A run made before counts were recorded takes ``given`` or ``auto``, and says so.
    """
    fixed = fixed_threads(given=given, recorded=recorded, resume=resume)
    if not resume:
        return fixed or auto, None
    if recorded is None:
        n = given or auto
        how = "from --threads" if given else "the automatic choice"
        return n, f"the run recorded no thread count (it predates that); using {n} thread(s), {how}"
    if given is not None and given != recorded:
        return recorded, (f"--resume keeps the run's {recorded} thread(s) so that it stays reproducible; "
                          f"ignoring --threads {given}")
    return recorded, None


def busy_note(*, threads: int, cores: int, load: float) -> str | None:
    """A warning when other work already holds the cores our threads need, else None. OpenMP threads spin at
    every barrier while a partner waits for a core: with one core busy, a 2-thread retrain step took 3x as long
    as on a quiet machine, a 1-thread one 1.7x (benchmarks/reliability/RESULTS-reliability.md). The count is not lowered
    behind the user's back: it changes the result, and the load at start says little about the next hour."""
    free = max(0.0, cores - load)
    if threads < 2 or threads <= free + 0.5:
        return None
    return (f"the machine is busy (load average {load:.1f} on {cores} usable core(s)) and this run uses {threads} "
            f"threads; --threads {max(1, round(free))} (or taskset) avoids a ~3x slowdown from contention")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch runs with ``n`` intra-op threads inside the block (inter-op too, where that is still legal); the
    intra-op count is restored afterwards, as commands also run in-process (tests, benchmarks). None: as it is."""
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be an integer >= 1, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # legal once, before any inter-op work; intra-op threads are what matter here
            log.debug("inter-op threads stay %d (the pool has started)", torch.get_num_interop_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def settle_threads(given: int | None, *, recorded: int | None, resume: bool, command: str = "",
                   logger: logging.Logger | None = None) -> Iterator[int]:
    """A run's thread count for the block (:func:`run_threads`; the automatic choice is this process's share of
    its cores beside the other nse-hw jobs running on them, :mod:`nse_hw.cpushare`), registered there while the
    block runs, with warnings on rank 0 about a kept count, contention or a busy machine. What the CLI and the
    Python API both use; apply it with :func:`torch_threads` and record it in the run. ``logger``: where the
    warnings go (default: this module's)."""
    from nse_hw.cpushare import describe, held_and_pending, share_threads
    from nse_hw.train import dist

    cap = default_threads()
    fixed = fixed_threads(given=given, recorded=recorded, resume=resume)
    with share_threads(cap=cap, fixed=fixed, command=command) as shared:
        n, note = run_threads(given=given, recorded=recorded, resume=resume, auto=shared.auto)
        sharing = None
        if fixed is None and shared.auto < cap:
            sharing = (f"{len(shared.others)} other nse-hw job(s) run on this process's cores "
                       f"({describe(shared.others)}): this run takes {n} of its {cap} thread(s) (recorded in the "
                       f"run; --threads {cap} takes them all)")
            if held_and_pending(cpus=shared.cpus, others=shared.others)[0] >= len(shared.cpus):
                sharing += ("; their threads already fill the cores, so every job runs slower until one ends (a "
                            "job keeps its count once running: jobs started together share without that)")
        busy = busy_note(threads=n, cores=usable_cores(), load=os.getloadavg()[0])
        for msg in (note, sharing, busy):
            if msg and dist.is_main():
                (logger or log).warning("%s", msg)
        yield n
