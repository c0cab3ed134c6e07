"""Where does a whole network's latency leave its LUT sum? Prefix networks against their partial sums.

For an arch with layers 0..L-1, prefix k is the stem plus layers 0..k-1 (k = 0..L), and the last row is the
whole network (head and classifier included). Each is exported and timed like a table entry; the gap between a
prefix's measured latency and the sum of its table entries, and how that gap grows layer by layer, show which
parts of a network the table misses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nse_hw.profilers.host import get_runner, summarize
from nse_hw.profilers.netbench import Bench
from nse_hw.profilers.pipeline import exported
from nse_hw.profilers.units import ExportJob, default_cache

from nse_hw.latency import LatencyTable, arch_components
from nse_hw.space import Arch, format_layer


def prefix_probe(arch: Arch, table: LatencyTable, bench: Bench) -> list[dict[str, Any]]:
    """One row per prefix: its LUT sum, measured median, the gap, and the gap's increment over the last row."""
    comps = arch_components(arch)
    table.require([k for c in comps for k, _ in c.keys])
    unit_ms = [sum(n * table.ms(k) for k, n in c.keys) for c in comps]
    n_layers = len(arch.layers)
    lut = np.cumsum(unit_ms)[: n_layers + 1].tolist() + [float(np.sum(unit_ms))]
    names = ["stem"] + [f"+layer{i} {format_layer(s.ops)}" for i, s in enumerate(arch.layers)] + ["+head+classifier"]
    jobs = [ExportJob.for_arch(arch, prefix=k) for k in range(n_layers + 1)] + [ExportJob.for_arch(arch)]
    runner = get_runner(bench.runtime, threads=bench.threads)
    stream = exported(jobs, runtime=bench.runtime, cache=bench.cache or default_cache(),
                      convert_cpus=bench.convert_cpus)
    rows, last_gap = [], 0.0
    for name, lut_ms, (_, path) in zip(names, lut, stream, strict=True):
        m = summarize(runner.load(path).time(warmup=bench.warmup, runs=bench.runs))
        gap = m["ms"] - lut_ms
        rows.append({"prefix": name, "lut_ms": lut_ms, "measured_ms": m["ms"], "gap_ms": gap,
                     "gap_pct": 100 * gap / m["ms"], "step_gap_ms": gap - last_gap})
        last_gap = gap
    return rows
