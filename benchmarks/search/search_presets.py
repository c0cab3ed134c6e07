"""Wall time and outcome of `nse-hw search` presets (and the random-search baseline) on the Fashion-MNIST proxy.

For each preset: wall time, round-over-round best in-budget held-out top-1 of the supernet, the final arch's
predicted latency / budget. Runs the real CLI in subprocesses (inheriting this process's CPU affinity).

    taskset -c 0 .venv/bin/python benchmarks/search/search_presets.py --table host-litert --latency 5ms \
        [--presets smoke default] [--baseline] [--seeds 0 1 2] [--out runs/bench-search]

With several seeds it also prints, per preset, the mean and spread of each round's best in-budget top-1.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NSE_HW = str(Path(sys.executable).parent / "nse-hw")


def run(preset: str, args: argparse.Namespace, *, seed: int, baseline: bool) -> list[float]:
    """One search; returns the best in-budget held-out top-1 of each round (none for the baseline)."""
    out = Path(args.out) / f"{preset}{'-random' if baseline else ''}-seed{seed}"
    if out.exists():
        shutil.rmtree(out)
    cmd = [NSE_HW, "search", "--latency", args.latency, "--table", args.table, "--preset", preset, "--out", str(out),
           "--seed", str(seed)] + (["--baseline", "random"] if baseline else [])
    t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # differs from wall when others share the CPU
    if res.returncode != 0:
        print(f"{preset} seed {seed}: FAILED ({res.returncode}): {res.stderr.strip().splitlines()[-1]}")
        return []
    result = json.loads((out / "result.json").read_text())
    name = f"{preset} ({'random search' if baseline else 'NSE'}, seed {seed})"
    print(f"{name}: wall {wall:.0f} s (CPU {cpu:.0f} s); final arch {result['predicted_ms']:.3f} ms predicted = "
          f"{result['budget_ratio']:.3f} x budget {result['budget_ms']:g} ms; proxy held-out top-1 "
          f"{result['proxy_heldout_top1']:.4f}")
    if pick := result.get("pick"):
        alt = pick["most_accurate_pareto"]
        print(f"  pick: {pick['rule']}; the most accurate Pareto arch in budget: {alt['ms']:.3f} ms "
              f"({alt['ms'] / result['budget_ms']:.3f} x budget), top-1 {alt['acc']:.4f}")
    for r in result.get("rounds", []):
        print(f"  round {r['round']}: best in-budget held-out top-1 {r['best_acc']:.4f} at {r['best_ms']:.3f} ms "
              f"({r['candidates']} scored, front of {r['front']}, E[latency] {r['expected_ms']:.3f} ms)")
    return [r["best_acc"] for r in result.get("rounds", [])]


def summarize_rounds(preset: str, per_seed: list[list[float]]) -> None:
    runs = [r for r in per_seed if r]
    if len(runs) < 2 or len({len(r) for r in runs}) != 1:
        return
    acc = np.array(runs)
    gains = acc[:, -1] - acc[:, 0]
    print(f"{preset}, {len(runs)} seeds: best in-budget top-1 per round, mean (min..max): " + "; ".join(
        f"round {i + 1} {c.mean():.4f} ({c.min():.4f}..{c.max():.4f})" for i, c in enumerate(acc.T))
        + f"; last - first round: {gains.mean():+.4f} ({gains.min():+.4f}..{gains.max():+.4f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", default="host-litert")
    ap.add_argument("--latency", default="5ms")
    ap.add_argument("--presets", nargs="+", default=["smoke", "default"])
    ap.add_argument("--baseline", action="store_true", help="also run the random-search baseline per preset")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", default="runs/bench-search")
    args = ap.parse_args()
    for preset in args.presets:
        per_seed = []
        for seed in args.seeds:
            per_seed.append(run(preset, args, seed=seed, baseline=False))
            if args.baseline:
                run(preset, args, seed=seed, baseline=True)
        summarize_rounds(preset, per_seed)


if __name__ == "__main__":
    main()
