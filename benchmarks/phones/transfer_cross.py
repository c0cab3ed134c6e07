"""Does a transfer model fitted on one phone's table predict another phone's? (Pixel 1 <-> Note10 blocks)

Fits the MBConv model (key features only: MACs and bytes) on one public table, predicts every block of the other
from the same features, then applies one scale factor (the median measured/predicted ratio, taken leave-one-out
so no block sees its own ratio). Reports MAPE and the share within +-10%, per op variant.

    taskset -c 0 .venv/bin/python benchmarks/phones/transfer_cross.py
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from nse_hw.latency import LatencyTable, parse_key
from nse_hw.latency.family import FamilyModel, features_of, fit_family, fit_rows
from nse_hw.latency.importers import import_table

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "device-data"


def blocks(table: LatencyTable) -> tuple[list[str], np.ndarray]:
    keys, y = fit_rows(table, None)["mb"]
    return keys, np.asarray(y)


def variant(key: str) -> str:
    op = parse_key(key).op
    assert op is not None
    return "plain" + ("+se" if op.se else "") + ("+hs" if op.hs else "")


def cross(model: FamilyModel, keys: list[str], y: np.ndarray, label: str) -> None:
    pred = np.array([model.predict(features_of(k, None, model.features)) for k in keys])
    ratio = y / pred
    scale = np.array([np.median(np.delete(ratio, i)) for i in range(len(y))])  # leave-one-out scale
    err = np.abs(pred * scale - y) / y
    raw = np.abs(pred - y) / y
    print(f"{label}: {len(y)} blocks; unscaled MAPE {raw.mean() * 100:.1f}%; scale x{np.median(ratio):.3f} -> "
          f"MAPE {err.mean() * 100:.1f}%, within +-10% {np.mean(err <= 0.1) * 100:.1f}%")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[variant(k)].append(i)
    for g, idx in sorted(groups.items()):
        e = err[idx]
        print(f"    {g:<12} n={len(idx):2d}  MAPE {e.mean() * 100:5.1f}%  "
              f"within +-10% {np.mean(e <= 0.1) * 100:5.1f}%  median ratio {np.median(ratio[idx]):.3f}")


def main() -> None:
    p1 = import_table(SHARED / "proxylessnas_mobile_trim_pixel1.yaml", fmt="proxylessnas", device="pixel1")[0]
    n10 = import_table(SHARED / "ofa_note10_224_lookup_table.yaml", fmt="ofa", device="note10",
                       allow_partial=True)[0]
    (pk, py), (nk, ny) = blocks(p1), blocks(n10)
    m_p1, m_n10 = fit_family("mb", pk, list(py)), fit_family("mb", nk, list(ny))
    print(f"self leave-one-out: Pixel 1 {m_p1.loo_mape:.1f}% ({m_p1.loo_mape_uncorrected:.1f}% without the shape "
          f"factor), Note10 {m_n10.loo_mape:.1f}% ({m_n10.loo_mape_uncorrected:.1f}%)")
    print("Note10 coefficients: " + ", ".join(f"{n}={c:.4g}" for n, c in zip(m_n10.features, m_n10.coef,
                                                                          strict=True) if c))
    cross(m_p1, nk, ny, "fit Pixel 1 -> predict Note10")
    cross(m_n10, pk, py, "fit Note10 -> predict Pixel 1")


if __name__ == "__main__":
    main()
