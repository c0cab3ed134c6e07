"""Which deployment choice moves the budget: host latency of whole networks, LiteRT vs ExecuTorch (where the
extra is installed), float32 vs int8, 1 vs 2 threads.

    taskset -c 0,1 .venv/bin/python benchmarks/deployment/deployment_matrix.py \
        --arch benchmarks/deployment/searched-pixel1-80ms-arch.json --arch configs/archs/mobilenetv2-1.0-224.json

Every network is exported as the latency tables' whole-network checks export it (profilers.units: seeded
random weights; int8 through export --int8's quantiser), then all (network, variant) pairs are timed in one
process, round by round, so a slow spell of the machine lands on every variant alike. Each row also gives the
prediction of the matching shipped table (calibrated), where one exists. 2-thread variants need both cores:
run it unpinned or pinned to both, and read the load average it prints (other jobs on a core slow 2 threads
much more than 1).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from nse_hw.profilers.host import get_runner, summarize
from nse_hw.profilers.pipeline import exported
from nse_hw.profilers.units import ExportJob, default_cache

from nse_hw.cli.profile import default_out
from nse_hw.errors import NseError
from nse_hw.latency import load_table, predict
from nse_hw.space import load_arch

VARIANTS = [("float32", 1), ("int8", 1), ("float32", 2), ("int8", 2)]
RUNTIMES = ["litert", "executorch"]  # executorch rows only where it is installed (an optional extra)


def _prediction(arch, runtime: str, precision: str, threads: int) -> float | None:
    path = default_out("host", runtime, threads, precision)
    if not path.exists():
        return None
    try:
        return predict(arch, load_table(path, precision=precision, threads=threads)).total_ms
    except NseError:  # a key the table lacks: no prediction for this row
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", required=True)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out-json", type=Path)
    ap.add_argument("--runtime", action="append", choices=RUNTIMES, help="default: all installed")
    ap.add_argument("--threads", type=int, action="append", help="default: 1 and 2 (ExecuTorch: one per process)")
    args = ap.parse_args()
    archs = [(a, load_arch(a)) for a in args.arch]
    from nse_hw.export.pte import executorch_available

    runtimes = args.runtime or [r for r in RUNTIMES if r != "executorch" or executorch_available()]
    variants = [(p, t) for p, t in VARIANTS if not args.threads or t in args.threads]
    files = {}
    for rt in runtimes:
        for precision in ("float32", "int8"):
            jobs = [ExportJob.for_arch(arch, precision=precision) for _, arch in archs]
            for (name, _), (_, path) in zip(archs, exported(jobs, runtime=rt, cache=default_cache()), strict=True):
                files[name, rt, precision] = path
    load = [os.getloadavg()[0]]
    sessions = {(name, rt, p, t): get_runner(rt, threads=t).load(files[name, rt, p])
                for name, _ in archs for rt in runtimes for p, t in variants}
    times: dict[tuple, list[np.ndarray]] = {k: [] for k in sessions}
    per_round = -(-args.runs // args.rounds)
    for _ in range(args.rounds):
        for k, s in sessions.items():
            times[k].append(s.time(warmup=args.warmup, runs=per_round))
            load.append(os.getloadavg()[0])
    rows = []
    for (name, rt, p, t), ts in times.items():
        arch = dict(archs)[name]
        m = summarize(np.concatenate(ts))
        rows.append({"arch": name, "runtime": rt, "precision": p, "threads": t, **m,
                     "predicted_ms": _prediction(arch, rt, p, t)})
    report = {"rows": rows, "load_avg_1min": {"min": min(load), "max": max(load),
              "median": float(np.median(load))}, "cpus_allowed": sorted(os.sched_getaffinity(0))}
    for r in rows:
        base = next((x["ms"] for x in rows if x["arch"] == r["arch"] and x["runtime"] == "litert"
                     and (x["precision"], x["threads"]) == VARIANTS[0]), r["ms"])
        pred = f"  predicted {r['predicted_ms']:.3f}" if r["predicted_ms"] else ""
        print(f"{Path(r['arch']).name:<34} {r['runtime']:<10} {r['precision']:<8} {r['threads']}t  {r['ms']:8.3f} ms "
              f"[p10 {r['p10']:.3f}, p90 {r['p90']:.3f}]  x{r['ms'] / base:.2f}{pred}")
    print(f"load average 1-min: {report['load_avg_1min']}")
    if args.out_json:
        args.out_json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
