"""Export figures: verification of float32 .tflite/.onnx and int8 .tflite against PyTorch on the Fashion-MNIST
test set, and latency (int8 vs float; deployment network measured vs the table's prediction).

Two phases, so conversion (heavy) and timing (needs a quiet core) can be pinned apart:

    taskset -c 0 .venv/bin/python benchmarks/train-export/export_figures.py export  [--run runs/bench-train/default]
    taskset -c 1 .venv/bin/python benchmarks/train-export/export_figures.py latency [--runs 200]

`export` runs `nse-hw export --format all --int8` on the whole test set (10000 images) into OUT; `latency`
re-times the exported files in one process, interleaved round by round, so ratios compare like with like.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from nse_hw.cli.export import HostAdapter
from nse_hw.export.card import signed_error_pct
from nse_hw.export.ship import ExportOptions, export_checkpoint
from nse_hw.latency import load_table, predict
from nse_hw.space import load_arch

FILES = ("model.tflite", "model_int8.tflite", "model.onnx", "deployment_random_weights.tflite")


def phase_export(args: argparse.Namespace) -> None:
    opts = ExportOptions(int8=True, out=args.out, force=True, table=args.table, verify_images=10000,
                         calibration_images=args.calibration, runs=50, warmup=5)
    card = export_checkpoint(args.run, opts, HostAdapter()).card
    print(f"\n{args.run}: verified on {card['accuracy']['verified_on']} ({card['accuracy']['weights']})")
    print(f"{'file':<34} {'KiB':>8} {'max|diff|':>10} {'agree':>8} {'top-1':>8}  (PyTorch top-1 "
          f"{100 * card['accuracy']['test_top1_pytorch']:.2f}%)")
    for name, f in card["files"].items():
        v = f.get("verification_vs_pytorch")
        if v:
            print(f"{name:<34} {f['bytes'] / 1024:>8.1f} {v['max_abs_diff']:>10.2e} {100 * v['top1_agreement']:>7.2f}% "
                  f"{100 * v['top1_file']:>7.2f}%")
    r = card["files"]["model_int8.tflite"]["vs_float_tflite"]
    print(f"int8 vs float .tflite: top-1 drop {r['top1_drop_points']:+.2f} points, size ratio {r['size_ratio']:.3f}")


def _round_robin(sessions: dict[str, object], host: HostAdapter, *, runs: int, rounds: int) -> dict[str, dict]:
    """``rounds`` rounds of runs/rounds timed invokes per file, interleaved: drift hits every file alike."""
    per = max(1, runs // rounds)
    times: dict[str, list[float]] = {n: [] for n in sessions}
    for _ in range(rounds):
        for name, s in sessions.items():
            times[name].extend(s.time(warmup=5, runs=per).tolist())  # type: ignore[attr-defined]
    from nse_hw.profilers.host import summarize

    return {n: summarize(np.asarray(t)) for n, t in times.items()}


def phase_latency(args: argparse.Namespace) -> None:
    host = HostAdapter()
    sessions = {n: host.load(args.out / n, "onnxruntime" if n.endswith(".onnx") else "litert", threads=1)
                for n in FILES}
    stats = _round_robin(sessions, host, runs=args.runs, rounds=4)
    print(f"\nhost latency, 1 thread, {args.runs} runs each (4 interleaved rounds), median [p10, p90]:")
    for n, s in stats.items():
        print(f"  {n:<34} {s['ms']:8.3f} ms [{s['p10']:.3f}, {s['p90']:.3f}]")
    print(f"int8 / float32 .tflite latency ratio: {stats['model_int8.tflite']['ms'] / stats['model.tflite']['ms']:.3f}")
    arch = load_arch(args.out / "arch.json")
    table = load_table(args.table)
    pred = predict(arch, table)
    meas = stats["deployment_random_weights.tflite"]["ms"]
    print(f"deployment arch {'x'.join(map(str, arch.input))}->{arch.classes}: measured {meas:.3f} ms, "
          f"LUT sum {pred.lut_sum_ms:.3f} ms ({signed_error_pct(pred.lut_sum_ms, meas):+.1f}%), "
          f"prediction {pred.total_ms:.3f} ms ({signed_error_pct(pred.total_ms, meas):+.1f}%, "
          f"calibrated: {bool(table.meta.get('calibration'))}) from {table.path}")
    (args.out / "latency.json").write_text(json.dumps({"stats": stats, "predicted_ms": pred.total_ms,
                                                       "lut_sum_ms": pred.lut_sum_ms}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", choices=["export", "latency"])
    ap.add_argument("--run", type=Path, default=Path("runs/bench-train/default"))
    ap.add_argument("--out", type=Path, default=Path("runs/bench-export"))
    ap.add_argument("--table", default="latency_tables/host-litert.json")
    ap.add_argument("--calibration", type=int, default=200)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("nse_hw").setLevel(logging.INFO)
    phase_export(args) if args.phase == "export" else phase_latency(args)


if __name__ == "__main__":
    main()
