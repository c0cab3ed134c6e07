"""Sharing the cores between nse-hw jobs that run at the same time on one machine.

Two default-thread ``nse-hw train --preset smoke`` runs started together on a 2-core host each took both cores
and each ran 20.9x as long as one alone (OpenMP threads spin at every barrier while their partner waits for a
core). So every ``search`` and ``train`` process writes one small file into a registry directory while it runs
(its pid, the start time of that pid, its CPUs and its thread count), and a job that picks its default count
takes its fair share of the CPUs it may use after the other live jobs on them (:func:`fair_share`).

"Started together" is the hard case: both would look at the registry before either had written its count. So
the console script claims a place (a *pending* entry, no count yet) before its heavy imports
(:func:`claim_pending`), a job decides only later, under an ``flock`` of the registry, and a pending entry
counts as a job that will want a share. A job that finds the CPUs already taken still gets one thread: jobs do
not change their count once running, because the count changes the numbers (``nse_hw.train.threads``).

An entry is live while its pid runs and that pid's start time (``/proc/<pid>/stat``) is the one recorded, so a
killed job (its file stays) or a reused pid is ignored, and its file removed by the next job that looks.
Standard library only: this module is imported before torch.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "NSE_HW_JOBS_DIR"  # the registry directory (tests point it at a temp directory)
_LOCK = ".lock"


@dataclass(frozen=True)
class Job:
    """One registry entry: process ``pid`` (whose start time is ``start``), running ``command`` on ``cpus``
    with ``threads`` torch threads (None: pending, starting up, no count chosen yet)."""

    pid: int
    start: int
    cpus: frozenset[int]
    threads: int | None
    command: str = ""

    @property
    def name(self) -> str:
        return f"{self.pid}-{self.start}.json"


def fair_share(*, cpus: Iterable[int], others: Iterable[Job]) -> int:
    """Threads for a job on ``cpus`` beside the ``others`` (live jobs): the CPUs the others' threads do not
    already hold, split evenly between this job and the others still pending, at least 1.

    A decided job holds ``min(threads, CPUs it shares with us)`` of ours; a job on other CPUs holds none.
    2 CPUs, nobody: 2. 2 CPUs, one pending: 1. 2 CPUs, one with 1 thread: 1; with 2: 1 (never 0).
    8 CPUs, two pending: 8 // 3 = 2. 2 CPUs, one with 1 thread pinned to another CPU: 2.
    """
    mine = frozenset(cpus)
    held, pending = held_and_pending(cpus=mine, others=others)
    return max(1, (len(mine) - held) // (1 + pending))


def held_and_pending(*, cpus: Iterable[int], others: Iterable[Job]) -> tuple[int, int]:
    """(CPUs of ``cpus`` the decided ``others`` hold, how many of the others sharing them are pending)."""
    mine = frozenset(cpus)
    held, pending = 0, 0
    for job in others:
        shared = len(mine & job.cpus)
        if not shared:
            continue
        if job.threads is None:
            pending += 1
        else:
            held += min(job.threads, shared)
    return held, pending


def registry_dir(env: Mapping[str, str] = os.environ) -> Path:
    """$NSE_HW_JOBS_DIR, else $XDG_RUNTIME_DIR/nse-hw/jobs (per user, in memory, emptied at logout), else
    $XDG_CACHE_HOME (~/.cache)/nse-hw/jobs."""
    if env.get(ENV):
        return Path(env[ENV])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "nse-hw" / "jobs"
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nse-hw" / "jobs"


def proc_start(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot, /proc/<pid>/stat field 22); None when it is
    gone or a zombie. 0 where there is no /proc: then only "the pid exists" is checked."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces and ')'
    if fields[0] in ("Z", "X"):  # exited, not yet reaped: no longer uses a core
        return None
    return int(fields[19])


def usable_cpus() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return frozenset(range(os.cpu_count() or 1))


class Registry:
    """The registry directory: one JSON file per live job, written atomically; :meth:`locked` serialises a
    read-decide-write between jobs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else registry_dir()

    @contextlib.contextmanager
    def locked(self) -> Iterator[Registry]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / _LOCK, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released by the kernel if we die holding it
            yield self

    def live(self, *, clean: bool = True) -> list[Job]:
        """The entries of running processes; the files of dead ones (or of reused pids) are removed."""
        jobs = []
        for p in self.path.glob("*.json"):
            try:
                pid, start = map(int, p.stem.split("-"))
            except ValueError:
                continue  # not ours
            if proc_start(pid) != start:
                if clean:
                    p.unlink(missing_ok=True)
                continue
            try:
                d = json.loads(p.read_text())
                jobs.append(Job(pid=pid, start=start, cpus=frozenset(int(c) for c in d["cpus"]),
                                threads=None if d["threads"] is None else int(d["threads"]),
                                command=str(d.get("command", ""))))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed meanwhile, or not written by us (our writes are atomic)
        return sorted(jobs, key=lambda j: j.pid)

    def write(self, job: Job) -> None:
        body = json.dumps({"pid": job.pid, "start": job.start, "cpus": sorted(job.cpus), "threads": job.threads,
                           "command": job.command}) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{job.name}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(body)
            os.replace(tmp, self.path / job.name)  # no fsync: the registry need not survive a power cut
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def remove(self, job: Job) -> None:
        (self.path / job.name).unlink(missing_ok=True)


def _me(threads: int | None, command: str) -> Job:
    return Job(pid=os.getpid(), start=proc_start(os.getpid()) or 0, cpus=usable_cpus(), threads=threads,
               command=command)


_claimed: list[tuple[Registry, Job]] = []  # this process's entries, removed at exit (kill -9: by the next reader)
_atexit = False


def _hold(reg: Registry, job: Job) -> None:
    global _atexit
    _claimed.append((reg, job))
    if not _atexit:
        atexit.register(_release)
        _atexit = True


def _release() -> None:
    while _claimed:
        reg, job = _claimed.pop()
        with contextlib.suppress(OSError):
            reg.remove(job)


def claim_pending(command: str) -> None:
    """Write this process's pending entry (no count yet), removed at exit: the CLI calls it before its heavy
    imports, so that a job started at the same moment sees this one when it decides. A registry that cannot be
    written is left alone here (:func:`share_threads` says so)."""
    try:
        reg = Registry()
        with reg.locked():
            reg.write(job := _me(None, command))
    except OSError:
        return
    _hold(reg, job)


@dataclass(frozen=True)
class Shared:
    """What :func:`share_threads` decided: the job's ``threads``; ``auto``, its automatic choice (the fair share,
    at most the cap); ``others``, the live jobs it saw (empty: alone); ``cpus``, the CPUs it may use."""

    threads: int
    auto: int
    others: tuple[Job, ...]
    cpus: frozenset[int]


@contextlib.contextmanager
def share_threads(*, cap: int, fixed: int | None = None, command: str = "",
                  registry: Registry | None = None) -> Iterator[Shared]:
    """Register this job for the block and yield its count: ``fixed`` when the run has one (--threads, its
    config, a resumed run's record; registered too), else its :func:`fair_share` beside the live jobs, at most
    ``cap``. Reading and registering happen under the registry's lock, so two jobs deciding at once see each
    other. The entry is removed when the block ends (and at exit). A registry that cannot be used leaves the
    count at ``fixed`` or ``cap``, with a warning naming it."""
    reg = registry or Registry()
    me = _me(None, command)
    try:
        with reg.locked():
            others = tuple(j for j in reg.live() if j.pid != me.pid)
            auto = min(cap, fair_share(cpus=me.cpus, others=others))
            me = Job(pid=me.pid, start=me.start, cpus=me.cpus, threads=fixed or auto, command=command)
            reg.write(me)
    except OSError as exc:
        log.warning("cannot use the job registry %s (%s): the thread count ignores other nse-hw jobs; set %s "
                    "to a writable directory", reg.path, exc.strerror or exc, ENV)
        yield Shared(threads=fixed or cap, auto=cap, others=(), cpus=me.cpus)
        return
    _hold(reg, me)
    try:
        yield Shared(threads=fixed or auto, auto=auto, others=others, cpus=me.cpus)
    finally:
        with contextlib.suppress(OSError):
            reg.remove(me)
        with contextlib.suppress(ValueError):
            _claimed.remove((reg, me))


def describe(others: Iterable[Job]) -> str:
    """'pid 12 (train, 1 thread(s)), pid 13 (search, starting)'"""
    return ", ".join(f"pid {j.pid} ({j.command or 'job'}, "
                     f"{'starting' if j.threads is None else f'{j.threads} thread(s)'})" for j in others)
