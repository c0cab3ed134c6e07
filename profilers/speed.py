"""A speed probe: one fixed unit, re-timed every few seconds while a table is built or networks are measured, so
timings taken minutes apart on a machine whose speed moves are put on one scale.

This project's VMs run 5-30% slower or faster for minutes at a time (benchmarks/latency/RESULTS-latency.md, seeds
3-6: two full tables of one CPU built ten minutes apart differ by ~10% on every network). A table then records the
quarter-hour it was timed in, and a validation measures the next one. So every timing ``t`` taken at time ``s`` is
put on the table's scale: ``t * reference / p(s)``, where ``p(s)`` is the probe's time at ``s`` (linear between its
timings either side) and ``reference`` the median of the probe's timings while the table was built (``meta.speed``).
Each entry keeps the ``probe_ms`` it was scaled by, so the table can be put on a new reference later. This removes
a slowdown that hits the probe and the units alike (a slower vCPU, another tenant's load); one that hits some ops
more than others (memory bandwidth against compute) it removes only in part.
"""

from __future__ import annotations

import bisect
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nse_hw.errors import NseError

PROBE_KEY = "mb_k5_e6|in=28x28x40|out=40|s=1"  # a mid-size block of the 224 px spaces: ~1 ms, compute and memory
PROBE_EVERY_S = 10.0  # ~1 s of probe per 10 s of timing: +10% time
_STATS = ("ms", "p10", "p90")


def probe_at(samples: Sequence[tuple[float, float]], t: float) -> float:
    """The probe's time (ms) at clock ``t``: linear between the two ``(clock, ms)`` samples around ``t``, the
    nearest sample's outside their span. ``samples`` are in clock order."""
    if not samples:
        raise NseError("the speed probe was never timed")
    clocks = [s for s, _ in samples]
    i = bisect.bisect_left(clocks, t)
    if i == 0:
        return samples[0][1]
    if i == len(samples):
        return samples[-1][1]
    (s0, p0), (s1, p1) = samples[i - 1], samples[i]
    return p0 + (p1 - p0) * (t - s0) / (s1 - s0) if s1 > s0 else p1


def scaled(stats: dict[str, Any], *, probe_ms: float, reference_ms: float) -> dict[str, Any]:
    """``stats`` (ms, p10, p90 where present) put on the reference's scale: times ``reference_ms / probe_ms``."""
    if not (probe_ms > 0 and reference_ms > 0):
        raise NseError(f"speed probe times must be > 0, got probe {probe_ms} and reference {reference_ms}")
    f = reference_ms / probe_ms
    return {k: round(v * f, 6) if k in _STATS and v is not None else v for k, v in stats.items()}


def rereference(entries: dict[str, dict[str, Any]], *, old_ms: float, new_ms: float) -> int:
    """Put every probe-scaled entry (one with ``probe_ms``) from reference ``old_ms`` on ``new_ms``, in place;
    returns how many moved."""
    moved = 0
    for key, e in entries.items():
        if "probe_ms" in e:
            entries[key] = scaled(e, probe_ms=old_ms, reference_ms=new_ms)
            moved += 1
    return moved


class SpeedProbe:
    """Times the probe (``time_probe()`` gives its ms) when due and keeps ``(clock, ms)`` samples.

    :meth:`tick` times it when ``every_s`` have passed since the last sample (or when forced); timings taken
    between two samples are scaled by :meth:`at` their clock.
    """

    def __init__(self, time_probe: Callable[[], float], *, every_s: float = PROBE_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._time_probe, self.every_s, self.clock = time_probe, every_s, clock
        self.samples: list[tuple[float, float]] = []

    def tick(self, *, force: bool = False) -> bool:
        """Time the probe if due; True when a sample was taken."""
        if not force and self.samples and self.clock() - self.samples[-1][0] < self.every_s:
            return False
        t0 = self.clock()
        ms = float(self._time_probe())
        self.samples.append(((t0 + self.clock()) / 2, ms))
        return True

    def at(self, t: float) -> float:
        return probe_at(self.samples, t)

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        """``fn()`` and the clock at its middle (what :meth:`at` takes), with the probe ticked first if due."""
        self.tick()
        t0 = self.clock()
        out = fn()
        return out, (t0 + self.clock()) / 2

    def record(self) -> dict[str, Any]:
        """What ``meta.speed`` keeps of this run: the probe's times in order, and their spread."""
        ms = [round(p, 6) for _, p in self.samples]
        med = statistics.median(ms)
        return {"probe_ms": ms, "min_over_median": round(min(ms) / med, 4), "max_over_median": round(max(ms) / med, 4)}


def speed_meta(meta: dict[str, Any], *, key: str = PROBE_KEY) -> dict[str, Any]:
    """The table's ``meta.speed``, created (no reference yet) if absent; refuses one probed with another unit,
    whose times would not compare (the timing settings are the table's own, which must match to add entries)."""
    speed = meta.setdefault("speed", {"key": key, "every_s": PROBE_EVERY_S, "reference_ms": None, "runs": []})
    if speed.get("key") != key:
        raise NseError(f"this table's speed probe is {speed.get('key')!r}, not {key!r}; use another --out")
    return speed


@dataclass(frozen=True)
class ProbeSettings:
    """How a table timed its probe (as its units) and the reference its entries are on: what whole-network
    measurements need to be put on the table's scale."""

    reference_ms: float
    warmup: int
    runs: int
    cpu_cache: str
    key: str = PROBE_KEY

    @classmethod
    def of(cls, meta: dict[str, Any]) -> ProbeSettings | None:
        """The settings of a table's ``meta``; None for a table without a probe reference."""
        speed = meta.get("speed") or {}
        if not speed.get("reference_ms"):
            return None
        return cls(reference_ms=float(speed["reference_ms"]), warmup=int(meta.get("warmup", 20)),
                   runs=int(meta.get("runs", 200)), cpu_cache=str(meta.get("cpu_cache", "evicted")), key=speed["key"])
