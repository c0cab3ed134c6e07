"""Timing a block as it runs inside a network: CPU caches evicted, input fresh, invocation overhead removed.

A block timed alone, 200 times in a row, keeps its weights and activations in L2/L3; inside a whole network
(tens of MB of weights on the 224 px spaces) each block finds them evicted by the blocks before it, while its
input was just written by the previous layer. Timed warm, the LUT sum under-predicts whole networks by 6-8%
on this host (benchmarks/latency/RESULTS-latency.md); timed with the caches evicted before every run and the input
rewritten, the sum matches them within ~1-2% for LiteRT. The cost of invoking a model at all (a trivial model
timed the same way) is paid once per network, not once per block, so it is subtracted from every entry.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nse_hw.profilers.host import Runner, Session, summarize

from nse_hw.errors import NseError

log = logging.getLogger(__name__)

CPU_CACHE_MODES = ("evicted", "warm")
NULL_KEY = "scale|in=1x1x8"  # a trivial model: what one invocation costs by itself
_FALLBACK_LLC = 32 * 2**20


def llc_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """Size of the largest CPU cache (from sysfs; 32 MiB when the kernel does not say)."""
    sizes = []
    for f in sysfs.glob("index*/size"):
        m = re.fullmatch(r"([0-9]+)([KMG]?)", f.read_text().strip())
        if m:
            sizes.append(int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)])
    return max(sizes, default=_FALLBACK_LLC)


class Evictor:
    """Writes a buffer 1.5x the last-level cache, so the next run finds none of its own data cached."""

    def __init__(self, *, nbytes: int | None = None) -> None:
        self.nbytes = int(nbytes or 1.5 * llc_bytes())
        self._buf = np.zeros(max(self.nbytes // 8, 1))

    def __call__(self) -> None:
        np.add(self._buf, 1.0, out=self._buf)


def time_session(session: Session, *, warmup: int, runs: int, cpu_cache: str,
                 evictor: Evictor | None = None) -> np.ndarray:
    """Per-run times (ms): ``warm`` back to back, or ``evicted`` (caches evicted and input rewritten first)."""
    if cpu_cache == "warm":
        return session.time(warmup=warmup, runs=runs)
    if cpu_cache != "evicted":
        raise NseError(f"cpu cache mode must be one of {CPU_CACHE_MODES}, got {cpu_cache!r}")
    return session.time(warmup=warmup, runs=runs, before_each=evictor or Evictor())


@dataclass(frozen=True)
class UnitTimer:
    """Times a model file as a table's entries are timed (its warm-up, runs and cache mode): what ``profile``,
    the speed probe and the importers' extra units share."""

    runner: Runner
    warmup: int
    runs: int
    cpu_cache: str
    evictor: Evictor | None

    def stats(self, path: Path) -> dict[str, float]:
        times = time_session(self.runner.load(path), warmup=self.warmup, runs=self.runs, cpu_cache=self.cpu_cache,
                             evictor=self.evictor)
        return {k: round(v, 6) for k, v in summarize(times).items()}  # ns resolution
