"""Judge the transfer where ground truth exists: this host. Predict resolutions a partial table never saw.

Protocol (fixed before running): the "device" is latency_tables/host-litert.json (every entry measured on this
host). Its keys sit at five input resolutions (112, 56, 28, 14, 7 px: one per stage, each with its own widths).
For each resolution R, the table is cut to the entries whose input is not R; the transfer model is fitted on
that partial table exactly as ``nse-hw tables transfer`` fits a phone table (key features; and, as the second
candidate, key features + ONNX Runtime's latency of the same key from host-onnxruntime.json, the "another
runtime's full table" case), and every measured entry at R is predicted and compared with its measurement.
Reported per held-out resolution and overall: MAPE and share within +-10%, for op entries (MBConv and rec) and
for the stem/head/classifier/join units.

    taskset -c 0 .venv/bin/python benchmarks/phones/host_partial_transfer.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table, parse_key
from nse_hw.latency.features import key_family
from nse_hw.latency.transfer import fit_transfer, predict_key

TABLES = Path(__file__).resolve().parents[2] / "latency_tables"


def pct(a: np.ndarray, within: bool = False) -> str:
    if not a.size:
        return "    -"
    return f"{100 * ((a <= 0.1).mean() if within else a.mean()):5.1f}%"


def subset(t: LatencyTable, keep) -> LatencyTable:
    return LatencyTable(dict(t.meta), {k: e for k, e in t.entries.items() if keep(k)})


def run(label: str, host: LatencyTable | None) -> None:
    dev = load_table(TABLES / "host-litert.json")
    sizes = sorted({parse_key(k).shape[0] for k in dev.entries}, reverse=True)
    print(f"{label}")
    allerr: dict[str, list[float]] = {"op": [], "unit": []}
    for r in sizes:
        train = subset(dev, lambda k, r=r: parse_key(k).shape[0] != r)
        model = fit_transfer(train, host)
        errs: dict[str, list[float]] = {"op": [], "unit": []}
        refused = 0
        for k, e in dev.entries.items():
            if parse_key(k).shape[0] != r or e["ms"] <= 0:
                continue
            try:
                ms, _ = predict_key(k, model, host)
            except NseError:
                refused += 1
                continue
            g = "op" if key_family(k) in ("mb", "rec") else "unit"
            errs[g].append(abs(ms / e["ms"] - 1))
        for g in errs:
            allerr[g] += errs[g]
        op, unit = np.array(errs["op"]), np.array(errs["unit"])
        print(f"  held out {r:3d}px: ops n={op.size:3d} MAPE {pct(op)} within 10% {pct(op, True)}   "
              f"units n={unit.size:2d} MAPE {pct(unit)}   refused (no entry of the family left) {refused}")
    op, unit = np.array(allerr["op"]), np.array(allerr["unit"])
    print(f"  all: ops n={op.size} MAPE {100 * op.mean():.1f}% within 10% {100 * (op <= 0.1).mean():.1f}%; "
          f"units n={unit.size} MAPE {100 * unit.mean():.1f}%")


def main() -> None:
    run("LiteRT from a partial LiteRT table (key features)", None)
    run("LiteRT from a partial LiteRT table + ONNX Runtime's full table (best of key / key + ORT ms)",
        load_table(TABLES / "host-onnxruntime.json"))


if __name__ == "__main__":
    main()
