"""Calibrate and validate a host latency table with the CLI, and probe the LUT-sum bias; print the figures.

    taskset -c 1 python benchmarks/latency/latency_validate.py --table latency_tables/host-litert.json \
        --calibrate 16 --cal-seed 1000 --samples 50 --seed 0 --plot /tmp/validate-litert.png
    taskset -c 1 python benchmarks/latency/latency_validate.py --table latency_tables/host-litert.json --probe 2
    taskset -c 1 python benchmarks/latency/latency_validate.py --table latency_tables/host-litert.json \
        --compare-modes 20

Run it pinned to the timing core (``taskset -c 1``). Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

NSE_HW = str(Path(sys.executable).with_name("nse-hw"))


def cli(*args: str) -> None:
    cmd = [NSE_HW, *args]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def show(summary: dict, label: str) -> None:
    print(f"  {label:<10} n={summary['n']}  within ±10%: {100 * summary['within_10pct']:.0f}%  "
          f"MAPE {summary['mape']:.2f}%  worst {summary['max_abs_pct_err']:.1f}%  bias {summary['bias_pct']:+.2f}% "
          f"({summary['bias_ms']:+.2f} ms)")


def validate(table: str, samples: int, seed: int, plot: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cli("latency", "validate", "--table", table, "--samples", str(samples), "--seed", str(seed),
            "--out-json", str(out), *(["--plot", plot] if plot else []))
        rep = json.loads(out.read_text())
    meas = np.array([r["measured_ms"] for r in rep["archs"]])
    print(f"validate {table}: {len(meas)} networks, {meas.min():.1f}-{meas.max():.1f} ms "
          f"(median {np.median(meas):.1f})")
    for kind, s in rep["summary"].items():
        if s:
            show(s, kind)


def probe(table_path: str, archs: int, seed: int) -> None:
    from nse_hw.profilers.bias_probe import prefix_probe
    from nse_hw.profilers.netbench import Bench, sample_archs, table_space

    from nse_hw.latency import load_table

    table = load_table(table_path)
    bench = Bench.for_table(table, warmup=table.meta["warmup"], runs=table.meta["runs"])
    for i, arch in enumerate(sample_archs(table_space(table, None), samples=archs, seed=seed)):
        print(f"prefix probe, arch seed{seed}#{i}: prefix, LUT sum, measured, gap (ms, %), gap added by this step")
        for r in prefix_probe(arch, table, bench):
            print(f"  {r['prefix']:<36} {r['lut_ms']:8.3f} {r['measured_ms']:8.3f} {r['gap_ms']:+7.3f} "
                  f"{r['gap_pct']:+6.1f}%  {r['step_gap_ms']:+7.3f}", flush=True)


def compare_modes(table_path: str, archs: int, seed: int) -> None:
    """Warm vs evicted entries (net of one invocation) against whole networks, all timed in this session."""
    from nse_hw.profilers.host import get_runner
    from nse_hw.profilers.netbench import Bench, measure_archs, sample_archs, table_space
    from nse_hw.profilers.timing import NULL_KEY, Evictor, time_session
    from nse_hw.profilers.units import ExportJob, default_cache, export_job

    from nse_hw.latency import arch_components, load_table
    from nse_hw.latency.calibration import error_summary

    table = load_table(table_path)
    runner, evictor = get_runner(table.meta["runtime"], threads=table.meta["threads"]), Evictor()
    nets = sample_archs(table_space(table, None), samples=archs, seed=seed)
    keys = sorted({k for a in nets for c in arch_components(a) for k, _ in c.keys} | {NULL_KEY})
    cost: dict[str, dict[str, float]] = {"warm": {}, "evicted": {}}
    for key in keys:
        session = runner.load(export_job(ExportJob.for_key(key), runtime=runner.name, cache=default_cache()))
        for mode in cost:
            cost[mode][key] = float(np.median(time_session(session, warmup=20, runs=200, cpu_cache=mode,
                                                           evictor=evictor)))
    meas = [m["ms"] for m in measure_archs(nets, Bench.for_table(table), desc="networks")]
    print(f"entries timed in this session vs {len(nets)} networks (seed {seed}) measured right after:")
    for mode, c in cost.items():
        pred = [sum(n * (c[k] - c[NULL_KEY]) for comp in arch_components(a) for k, n in comp.keys) for a in nets]
        show(error_summary(pred, meas), mode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True)
    ap.add_argument("--calibrate", type=int, default=0, metavar="N", help="Fit the calibration on N networks first.")
    ap.add_argument("--cal-seed", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=0, help="Validate on this many random networks.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot")
    ap.add_argument("--probe", type=int, default=0, metavar="K", help="Prefix-probe K random networks.")
    ap.add_argument("--probe-seed", type=int, default=5)
    ap.add_argument("--compare-modes", type=int, default=0, metavar="N",
                    help="Time the entries of N networks warm and evicted, then the networks; compare.")
    args = ap.parse_args()
    if args.calibrate:
        cli("latency", "calibrate", "--table", args.table, "--samples", str(args.calibrate), "--seed",
            str(args.cal_seed))
    if args.samples:
        validate(args.table, args.samples, args.seed, args.plot)
    if args.probe:
        probe(args.table, args.probe, args.probe_seed)
    if args.compare_modes:
        compare_modes(args.table, args.compare_modes, args.seed)


if __name__ == "__main__":
    main()
