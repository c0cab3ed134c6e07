"""Retraining wall time and test top-1 of the Fashion-MNIST presets (smoke, default) for a deployment arch.

    taskset -c 0 .venv/bin/python benchmarks/train-export/train_presets.py \
        [--arch configs/archs/proxylessnas-mobile-224.json] [--presets smoke default] [--out runs/bench-train]

One process, one thread (the figures in RESULTS-train-export.md are from `taskset -c 0`). Each preset trains
into OUT/<preset> (an existing complete run is reported, not retrained: delete it to measure again).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from nse_hw.space import load_arch
from nse_hw.train.recipe import TRAIN_CONFIGS, load_train_config
from nse_hw.train.rundir import RESULT
from nse_hw.train.trainer import train


def run_preset(arch_path: Path, preset: str, out: Path) -> dict:
    run = out / preset
    if not (run / RESULT).is_file():
        cfg, used = load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml", preset=preset)
        start = time.perf_counter()
        train(load_arch(arch_path), data="fashion-mnist", cfg=cfg, out=run, preset=used,
              config_path=str(TRAIN_CONFIGS / "fashion-mnist.yaml"), resume=(run / "last.pt").is_file())
        total = time.perf_counter() - start
        (run / "bench.json").write_text(json.dumps({"total_wall_s": total}))
    result = json.loads((run / RESULT).read_text())
    bench = json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else {}
    return {"preset": preset, **result, **bench}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", type=Path, default=Path("configs/archs/proxylessnas-mobile-224.json"))
    ap.add_argument("--presets", nargs="+", default=["smoke", "default"])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-train"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("nse_hw").setLevel(logging.INFO)
    rows = [run_preset(args.arch, p, args.out) for p in args.presets]
    print(f"\narch {args.arch} (deployment {rows[0]['deployment_input']} -> {rows[0]['deployment_classes']})")
    print(f"{'preset':<8} {'width':>5} {'proxy':>10} {'epochs':>6} {'train s':>8} {'total s':>8} "
          f"{'held-out':>8} {'test top-1':>10} {'test imgs':>9}")
    for r in rows:
        proxy = "x".join(map(str, r["proxy_input"]))
        print(f"{r['preset']:<8} {r['width_mult']:>5} {proxy:>10} {r['epochs']:>6} {r['train_wall_s']:>8.1f} "
              f"{r.get('total_wall_s', float('nan')):>8.1f} {100 * r['best_val_top1']:>7.2f}% "
              f"{100 * r['test_top1']:>9.2f}% {r['test_images']:>9}")


if __name__ == "__main__":
    main()
