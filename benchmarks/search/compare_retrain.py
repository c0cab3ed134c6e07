"""NSE vs random search vs a MobileNetV2-style arch scaled to the same budget, each retrained from scratch.

    taskset -c 0 .venv/bin/python benchmarks/search/compare_retrain.py --latency 80ms --device pixel1 --out runs/compare

Runs `nse-hw search` (default preset), `nse-hw search --baseline random`, builds the MobileNetV2-style arch
(the space's skeleton with one MBConv k3 op per layer, the widest expansion that fits the budget, then layers
widened to e6 from the last one back while the budget holds), retrains all three with the same recipe
(`nse-hw train --preset default`) and prints test top-1 and predicted latency.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from nse_hw.evolve.budget import parse_latency, resolve_table
from nse_hw.latency import predict
from nse_hw.space import load_space, parse_op, save_arch

NSE = [sys.executable, "-m", "nse_hw.cli"]


def mbv2_style(space_name: str, table, budget_ms: float):
    space = load_space(space_name)
    n = len(space.searchable)
    ops = {e: parse_op(f"mb_k3_e{e}") for e in (1, 3, 6)}
    for e in (6, 3, 1):
        choices = [(ops[e],)] * n
        if predict(space.arch(choices), table).total_ms <= budget_ms:
            break
    choices = list(choices)
    for j in reversed(range(n)):  # widen the cheap late layers first
        trial = choices[:j] + [(ops[6],)] + choices[j + 1:]
        if predict(space.arch(trial), table).total_ms <= budget_ms:
            choices = trial
    return space.arch(choices, source="mobilenetv2-style scaled to budget")


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", default="80ms")
    ap.add_argument("--device", default="pixel1")
    ap.add_argument("--space", default="nse27-proxyless224")
    ap.add_argument("--search-preset", default="default")
    ap.add_argument("--train-preset", default="default")
    ap.add_argument("--out", default="runs/compare")
    args = ap.parse_args()
    out = Path(args.out)
    budget = parse_latency(args.latency)
    table = resolve_table(device=args.device, table=None)
    common = ["--latency", args.latency, "--device", args.device, "--space", args.space,
              "--preset", args.search_preset]
    if not (out / "nse" / "arch.json").exists():
        run(NSE + ["search", *common, "--out", str(out / "nse")])
    if not (out / "random" / "arch.json").exists():
        run(NSE + ["search", *common, "--baseline", "random", "--out", str(out / "random")])
    (out / "mbv2").mkdir(parents=True, exist_ok=True)
    save_arch(mbv2_style(args.space, table, budget), out / "mbv2" / "arch.json")
    rows = []
    for name in ("nse", "random", "mbv2"):
        train_dir = out / f"train-{name}"
        if not (train_dir / "result.json").exists():
            run(NSE + ["train", str(out / name / "arch.json"), "--preset", args.train_preset, "--out", str(train_dir)])
        result = json.loads((train_dir / "result.json").read_text())
        from nse_hw.space import load_arch

        pred = predict(load_arch(out / name / "arch.json"), table).total_ms
        rows.append((name, result, pred))
    print(f"\nbudget {budget:g} ms on {table.name}; retrained with `nse-hw train --preset {args.train_preset}`")
    for name, result, pred in rows:
        top1 = result.get("test_top1", result.get("top1"))
        print(f"  {name:<7} predicted {pred:8.2f} ms ({pred / budget:.3f} of budget)  test top-1 {top1}")


if __name__ == "__main__":
    main()
