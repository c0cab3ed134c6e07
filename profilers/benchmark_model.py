"""LiteRT/TFLite ``benchmark_model``: the command line we run on a phone, and a parser for what it prints.

Output shapes seen across versions (all handled; times are microseconds):

    count=100 first=80068 curr=81025 min=79589 max=83607 avg=80670.2 std=871      (2018: plain lines)
    INFO: count=20 first=31500 curr=30900 min=30718 max=36410 avg=31118.1 std=1323 (newer: an INFO: prefix;
                                                                                   some add p5=/median=/p95=)
    count=1 curr=40000                                                             (a single or all-same run)
    Timings (microseconds): count=100 first=80041 ... avg=80635.7 std=870           (op-profiling summary)
    Inference timings in us: Init: 21432, First inference: 91020, Warmup (avg): 60125.5, Inference (avg): 31118.1

The timed runs' statistics are the last plain ``count=`` line (the one before it is the warm-up). With
``--enable_op_profiling=true`` a "Run Order" table lists every node: type, start, first, avg ms, %, cdf%, mem
KB, times called, name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from nse_hw.errors import NseError

_STAT = re.compile(r"\bcount=(\d+)((?:\s+[a-z0-9_]+=-?[0-9.eE+]+)*)(\(all same\))?")
_PAIR = re.compile(r"([a-z0-9_]+)=(-?[0-9.eE+]+)")
_THREADS = re.compile(r"(?:Num threads|#threads used for CPU inference|num_threads):\s*\[(\d+)\]")
_VERSION = re.compile(r"(?:TF ?Lite|TensorFlow Lite|LiteRT|benchmark[_ ]model)[^\n]*?version[:= ]+\[?([\w.\-]+)",
                      re.IGNORECASE)
_INIT = re.compile(r"Init(?:ialized session in|:)\s*([0-9.]+)(ms)?")
_NODES = re.compile(r"Number of nodes executed:\s*(\d+)")
_SECTION = re.compile(r"=+ ([A-Za-z ]+?) =+")
_NODE_ROW = re.compile(r"^\s*(?:INFO:\s*)?([A-Z][A-Z0-9_]*)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)%\s+"
                       r"([0-9.]+)%\s+([0-9.]+)\s+(\d+)\s+\[(.*)\]\s*$")


class BenchmarkParseError(NseError):
    """benchmark_model printed something we cannot read; the message shows its first lines."""


@dataclass(frozen=True)
class NodeTiming:
    """One row of the op-profiling "Run Order" table (times in ms)."""

    type: str
    start_ms: float
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int
    name: str


@dataclass(frozen=True)
class BenchmarkResult:
    """Statistics of the timed runs in ms; ``median_ms`` and friends only where the binary printed them."""

    count: int
    avg_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    first_ms: float
    median_ms: float | None = None
    p5_ms: float | None = None
    p95_ms: float | None = None
    warmup_avg_ms: float | None = None
    init_ms: float | None = None
    threads: int | None = None
    version: str | None = None
    nodes: tuple[NodeTiming, ...] = ()
    nodes_executed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        """The entry statistic: the median where printed, else the mean (benchmark_model's only centre)."""
        return self.median_ms if self.median_ms is not None else self.avg_ms

    @property
    def statistic(self) -> str:
        return "median" if self.median_ms is not None else "mean"

    def entry_stats(self) -> dict[str, Any]:
        """Fields for a latency-table entry (besides ``ms`` and ``source``)."""
        d: dict[str, Any] = {"stat": self.statistic, "avg": self.avg_ms, "std": self.std_ms, "min": self.min_ms,
                             "max": self.max_ms, "n": self.count}
        d.update({k: v for k, v in (("p5", self.p5_ms), ("p95", self.p95_ms)) if v is not None})
        return d


def _stat_lines(text: str) -> list[tuple[str, dict[str, float]]]:
    """Every ``count=...`` statistics line: (the text before it, its key=value pairs in us)."""
    out = []
    for line in text.splitlines():
        m = _STAT.search(line)
        if not m:
            continue
        vals = {"count": float(m.group(1))} | {k: float(v) for k, v in _PAIR.findall(m.group(2) or "")}
        if "avg" not in vals and "curr" in vals:  # "count=1 curr=X" / "(all same)": every run took curr
            vals |= {k: vals["curr"] for k in ("first", "min", "max", "avg")} | {"std": 0.0}
        out.append((line[: m.start()], vals))
    return out


def _head(text: str, n: int = 6) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][:n]
    return " | ".join(lines) if lines else "(no output)"


def parse_run_order(text: str) -> list[NodeTiming]:
    """The rows of the first "Run Order" table (empty if the run had no op profiling)."""
    rows: list[NodeTiming] = []
    inside = False
    for line in text.splitlines():
        if sec := _SECTION.search(line):
            if inside:
                break
            inside = sec.group(1).strip() == "Run Order"
            continue
        if inside and (m := _NODE_ROW.match(line)):
            t, start, first, avg, pct, cdf, mem, called, name = m.groups()
            rows.append(NodeTiming(t, float(start), float(first), float(avg), float(pct), float(cdf), float(mem),
                                   int(called), name))
    return rows


def parse_benchmark_output(text: str) -> BenchmarkResult:
    """Parse one benchmark_model run; :class:`BenchmarkParseError` (with the first lines) if it has no timings."""
    stats = [(pre, v) for pre, v in _stat_lines(text) if "Timings" not in pre and "Memory" not in pre]
    if not stats or "avg" not in stats[-1][1]:
        raise BenchmarkParseError(f"cannot parse benchmark_model output (no 'count=... avg=...' line); it began: "
                                  f"{_head(text)}")
    v = {k: x / 1000.0 for k, x in stats[-1][1].items() if k != "count"}
    warm = stats[-2][1]["avg"] / 1000.0 if len(stats) > 1 else None
    threads = _THREADS.search(text)
    version = _VERSION.search(text)
    init = _INIT.search(text)
    nodes = parse_run_order(text)
    executed = _NODES.search(text)
    return BenchmarkResult(
        count=int(stats[-1][1]["count"]), avg_ms=v["avg"], std_ms=v.get("std", 0.0), min_ms=v["min"],
        max_ms=v["max"], first_ms=v["first"], median_ms=v.get("median"), p5_ms=v.get("p5"), p95_ms=v.get("p95"),
        warmup_avg_ms=warm, threads=int(threads.group(1)) if threads else None,
        version=version.group(1) if version else None,
        init_ms=(float(init.group(1)) if init.group(2) else float(init.group(1)) / 1000.0) if init else None,
        nodes=tuple(nodes), nodes_executed=int(executed.group(1)) if executed else None,
    )


def benchmark_command(binary: str, graph: str, *, threads: int, warmup: int, runs: int, mask: str | None = None,
                      op_profiling: bool = False, extra_flags: tuple[str, ...] = ()) -> str:
    """The device shell command line (every word quoted for the phone's ``sh``)."""
    words = (["taskset", mask] if mask else []) + [
        binary, f"--graph={graph}", f"--num_threads={threads}", f"--warmup_runs={warmup}", f"--num_runs={runs}",
    ] + (["--enable_op_profiling=true"] if op_profiling else []) + list(extra_flags)
    return " ".join(shlex.quote(w) for w in words)
