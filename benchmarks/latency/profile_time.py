"""Build a host latency table with the CLI and print its wall time and per-entry spread.

    taskset -c 1 python benchmarks/latency/profile_time.py --runtime litert            # cold: fresh export cache
    python benchmarks/latency/profile_time.py --table latency_tables/host-litert.json  # spread of an existing table

Run it pinned to the timing core (``taskset -c 1``): the converter process goes to the other core(s).
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NSE_HW = str(Path(sys.executable).with_name("nse-hw"))


def spread(table: Path, *, min_ms: float = 0.0) -> dict[str, float]:
    """p90/p10 of the entries of at least ``min_ms`` (and p10 > 0): how much a block's time varies per run."""
    entries = [e for e in json.loads(table.read_text())["entries"].values() if e["ms"] >= min_ms and e["p10"] > 0]
    r = np.array([e["p90"] / e["p10"] for e in entries])
    worst = max(entries, key=lambda e: e["p90"] / e["p10"])
    return {"entries": len(r), "median": round(float(np.median(r)), 3), "p90": round(float(np.percentile(r, 90)), 3),
            "max": round(float(r.max()), 3), "worst_entry_ms": worst["ms"]}


def show_spread(name: str, table: Path) -> None:
    print(f"{name}: spread p90/p10, all entries {json.dumps(spread(table))}")
    print(f"{name}: spread p90/p10, entries >= 0.1 ms {json.dumps(spread(table, min_ms=0.1))}")


def build(runtime: str, space: str, out: Path, cache: Path, threads: int) -> float:
    cmd = [NSE_HW, "profile", "--device", "host", "--runtime", runtime, "--space", space, "--threads", str(threads),
           "--out", str(out), "--cache", str(cache)]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", choices=["litert", "onnxruntime"])
    ap.add_argument("--space", default="nse27-proxyless224")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", type=Path, action="append", default=[], help="Only print the spread of this table.")
    args = ap.parse_args()
    tables = list(args.table)
    if args.runtime:
        with tempfile.TemporaryDirectory(prefix="nse-hw-profile-time-") as tmp:
            out = Path(tmp) / f"host-{args.runtime}.json"
            wall = build(args.runtime, args.space, out, Path(tmp) / "cache", args.threads)
            n = len(json.loads(out.read_text())["entries"])
            print(f"{args.runtime}: {n} entries in {wall:.0f} s wall ({wall / 60:.1f} min, cold export cache)")
            show_spread(args.runtime, out)
    for t in tables:
        show_spread(str(t), t)


if __name__ == "__main__":
    main()
