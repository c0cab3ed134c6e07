"""Wall time and outcome of `nse-hw search` presets (and the random-search baseline) on the Fashion-MNIST proxy.

For each preset: wall time, round-over-round best in-budget held-out top-1 of the supernet, the final arch's
predicted latency / budget. Runs the real CLI in subprocesses (inheriting this process's CPU affinity).

    taskset -c 0 .venv/bin/python benchmarks/search_presets.py --table host-litert --latency 5ms \
        [--presets smoke default] [--baseline] [--out runs/bench-search]
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

NSE_HW = str(Path(sys.executable).parent / "nse-hw")


def run(preset: str, args: argparse.Namespace, *, baseline: bool) -> None:
    out = Path(args.out) / (f"{preset}-random" if baseline else preset)
    if out.exists():
        shutil.rmtree(out)
    cmd = [NSE_HW, "search", "--latency", args.latency, "--table", args.table, "--preset", preset, "--out", str(out),
           "--seed", str(args.seed)] + (["--baseline", "random"] if baseline else [])
    t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # differs from wall when others share the CPU
    if res.returncode != 0:
        print(f"{preset}: FAILED ({res.returncode}): {res.stderr.strip().splitlines()[-1]}")
        return
    result = json.loads((out / "result.json").read_text())
    name = f"{preset} ({'random search' if baseline else 'NSE'})"
    print(f"{name}: wall {wall:.0f} s (CPU {cpu:.0f} s); final arch {result['predicted_ms']:.3f} ms predicted = "
          f"{result['budget_ratio']:.3f} x budget {result['budget_ms']:g} ms; proxy held-out top-1 "
          f"{result['proxy_heldout_top1']:.4f}")
    for r in result.get("rounds", []):
        print(f"  round {r['round']}: best in-budget held-out top-1 {r['best_acc']:.4f} at {r['best_ms']:.3f} ms "
              f"({r['candidates']} scored, front of {r['front']}, E[latency] {r['expected_ms']:.3f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", default="host-litert")
    ap.add_argument("--latency", default="5ms")
    ap.add_argument("--presets", nargs="+", default=["smoke", "default"])
    ap.add_argument("--baseline", action="store_true", help="also run the random-search baseline per preset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-search")
    args = ap.parse_args()
    for preset in args.presets:
        run(preset, args, baseline=False)
        if args.baseline:
            run(preset, args, baseline=True)


if __name__ == "__main__":
    main()
