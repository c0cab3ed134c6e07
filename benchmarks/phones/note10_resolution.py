"""Note10: how well the transfer model scales to a resolution it never saw (leave one resolution out).

Protocol (fixed before running): for each of the five OFA Note10 tables (160, 176, 192, 208, 224 px), import
the other four (``--allow-partial``: pool and Conv_2 have no counterpart), fit the transfer model on them alone
(key features; shape factor only where a shape was measured), and predict every entry of the held-out table
whose key the four do not hold (shapes shared across resolutions, e.g. the 7x7 stage of 208 and 224, are not
judged: they are not predictions). MAPE and share within +-10% per held-out resolution, for MBConv blocks and
for the stem/head/classifier units (anchored families).

    taskset -c 0 .venv/bin/python benchmarks/phones/note10_resolution.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nse_hw.latency.features import key_family
from nse_hw.latency.importers import import_table
from nse_hw.latency.transfer import fit_transfer, predict_key

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "device-data"
RES = (160, 176, 192, 208, 224)


def table_of(resolutions: tuple[int, ...]):
    t = None
    for r in resolutions:
        t, _ = import_table(SHARED / f"ofa_note10_{r}_lookup_table.yaml", fmt="ofa", device="note10", table=t,
                            allow_partial=True)
    return t


def main() -> None:
    print(f"{'held out':>8}  {'MBConv n':>8} {'MAPE':>6} {'<=10%':>6}   {'units n':>7} {'MAPE':>6}   worst MBConv")
    for held in RES:
        train = table_of(tuple(r for r in RES if r != held))
        test = table_of((held,))
        model = fit_transfer(train)
        errs: dict[str, list[float]] = {"mb": [], "unit": []}
        worst = (0.0, "")
        for key, e in test.entries.items():
            if key in train:
                continue
            ms, _ = predict_key(key, model)
            err = ms / e["ms"] - 1
            group = "mb" if key_family(key) == "mb" else "unit"
            errs[group].append(abs(err))
            if group == "mb" and abs(err) > abs(worst[0]):
                worst = (err, key)
        mb, unit = np.array(errs["mb"]), np.array(errs["unit"])
        print(f"{held:>6}px  {mb.size:8d} {100 * mb.mean():5.1f}% {100 * (mb <= 0.1).mean():5.0f}%   "
              f"{unit.size:7d} {100 * unit.mean() if unit.size else float('nan'):5.1f}%   "
              f"{100 * worst[0]:+.0f}% {worst[1]}")


if __name__ == "__main__":
    main()
