"""int8 vs float32 on this host's LiteRT, both op resolver paths: XNNPACK delegate (default) and builtin kernels.

    taskset -c 0 .venv/bin/python benchmarks/deployment/int8_kernels.py --out benchmarks/deployment/int8-kernels.json

Times the searched network's 224-px deployment file (random weights; float32 and int8 as `nse-hw export --int8`
makes it) and single blocks that isolate the depthwise kernel size, each with ``kernels=xnnpack`` and
``kernels=builtin``, in one run (ratios, not absolute times, are what compare). Also counts the nodes the
XNNPACK delegate takes. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
from nse_hw.profilers.host import get_runner, summarize
from nse_hw.profilers.units import ExportJob, default_cache, export_job

from nse_hw.hostcpu import describe, this_cpu
from nse_hw.space import load_arch

ARCH = Path(__file__).parent / "searched-pixel1-80ms-arch.json"
BLOCKS = ["mb_k3_e6|in=56x56x24|out=24|s=1", "mb_k5_e6|in=56x56x24|out=24|s=1", "mb_k7_e6|in=56x56x24|out=24|s=1",
          "mb_k3_e6|in=14x14x80|out=80|s=1", "mb_k7_e6|in=14x14x80|out=80|s=1", "rec_k5_e2|in=28x28x40|out=40|s=1"]


class _Grab(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def delegated(path: Path) -> str | None:
    """The XNNPACK delegate's own summary line ("Replacing N out of M node(s) ..."), from the native log."""
    grab = _Grab()
    lg = logging.getLogger("nse_hw.profilers.host")
    lg.addHandler(grab)
    old = lg.level
    lg.setLevel(logging.DEBUG)
    try:
        get_runner("litert", threads=1).load(path)
    finally:
        lg.removeHandler(grab)
        lg.setLevel(old)
    hits = [m.group(0) for line in grab.lines for m in [re.search(r"Replacing \d+ out of \d+ node\(s\)[^\n]*", line)]
            if m]
    return "; ".join(hits) or None


def time_all(paths: dict[str, Path], runs: int, warmup: int, rounds: int) -> dict[str, dict]:
    out: dict[str, list[np.ndarray]] = {}
    for _ in range(rounds):  # interleaved rounds: a slow spell lands on every variant alike
        for name, path in paths.items():
            for kernels in ("xnnpack", "builtin"):
                s = get_runner("litert", threads=1, kernels=kernels).load(path)
                out.setdefault(f"{name}|{kernels}", []).append(s.time(warmup=warmup, runs=runs // rounds))
    return {k: summarize(np.concatenate(v)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-blocks", action="store_true")
    args = ap.parse_args()
    cache = default_cache()
    arch = load_arch(ARCH)
    paths = {f"network {p}": export_job(ExportJob.for_arch(arch, precision=p), runtime="litert", cache=cache)
             for p in ("float32", "int8")}
    if not args.no_blocks:
        for key in BLOCKS:
            for p in ("float32", "int8"):
                paths[f"{key} {p}"] = export_job(ExportJob.for_key(key, precision=p), runtime="litert", cache=cache)
    dele = {name: delegated(path) for name, path in paths.items()}
    res = time_all(paths, args.runs, args.warmup, args.rounds)
    cpu = this_cpu()
    print(f"CPU: {describe(cpu)}")
    rows = []
    for name in paths:
        x, b = res[f"{name}|xnnpack"]["ms"], res[f"{name}|builtin"]["ms"]
        rows.append({"model": name, "xnnpack_ms": x, "builtin_ms": b, "builtin_over_xnnpack": b / x,
                     "xnnpack_delegation": dele[name]})
        print(f"{name:<44} xnnpack {x:8.3f} ms  builtin {b:8.3f} ms  builtin/xnnpack {b / x:5.2f}  [{dele[name]}]")
    for kern in ("xnnpack", "builtin"):
        f, i = res[f"network float32|{kern}"]["ms"], res[f"network int8|{kern}"]["ms"]
        print(f"network int8/float32 with {kern}: {i / f:.2f}")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu, "arch": str(ARCH), "runs": args.runs, "warmup": args.warmup,
                                        "rounds": args.rounds, "timings": res, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
