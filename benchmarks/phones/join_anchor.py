"""Judge a borrowed anchor (``tables transfer --anchor-from``) where ground truth exists.

The Note10 tables never timed an add (or the mean rule's 1/n multiply) alone, so `note10-tflite.json` prices its
joins as its own mb model times the factor the Pixel 1 table shows between its real adds and its mb model. No
Note10 join measurement exists to judge that. This script judges the same move on the tables that do have
join entries: for every ordered pair (donor, target) of the shipped tables below, each target join entry
(measured or imported) is predicted as the target's key-feature mb model times the donor's factor, and compared
with the entry. References: the target's own factor, leave-one-out (what anchoring on its own entries gives),
and factor 1 (the mb model alone). Fixed before it ran (2026-11-30); no parameter is fitted to the result.

    .venv/bin/python benchmarks/phones/join_anchor.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nse_hw.latency import load_table
from nse_hw.latency.family import ANCHOR_ON, anchor_family, borrow_anchor, features_of, fit_family, fit_rows
from nse_hw.latency.features import key_family

REPO = Path(__file__).resolve().parents[2]
# host-executorch is left out: 16 of its entries (adds and scales among them) are 0.0 ms, below its timer's floor
# once the null model's time is subtracted, so a relative error is undefined there
TABLES = ("pixel1-tflite", "host-litert", "host-onnxruntime")
OUT = Path(__file__).with_name("join-anchor.json")


def errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    e = np.abs(pred / y - 1)
    return {"n": int(y.size), "mape": round(float(e.mean() * 100), 2),
            "within_10": round(float((e <= .1).mean() * 100), 1), "worst": round(float(e.max() * 100), 1),
            "bias": round(float(np.mean(pred / y - 1) * 100), 2)}


def main() -> None:
    tables = {n: load_table(REPO / "latency_tables" / f"{n}.json") for n in TABLES}
    out: dict[str, dict] = {}
    for target, t in tables.items():
        rows = fit_rows(t, None)
        keys, ys = rows["join"]
        y = np.asarray(ys)
        base = fit_family(ANCHOR_ON, *rows[ANCHOR_ON], shape_correction=False)
        mb = np.array([base.predict({**dict.fromkeys(base.features, 0.0), **features_of(k, None, base.features)})
                       for k in keys])
        own = anchor_family("join", keys, ys, base)
        res = {"entries": len(keys), "kinds": sorted({k.split("|")[0] for k in keys}),
               "own_factor": own.anchored["factor"], "own_leave_one_out": {"mape": own.loo_mape},
               "factor_1": errors(mb, y), "donors": {}}
        for donor, d in tables.items():
            if donor == target:
                continue
            fm = borrow_anchor("join", d, base)
            res["donors"][donor] = {"factor": fm.anchored["factor"], **errors(mb * fm.anchored["factor"], y)}
        out[target] = res
        print(f"{target}: {len(keys)} join entries ({', '.join(res['kinds'])}); "
              f"own factor {own.anchored['factor']:.3g}, "
              f"own leave-one-out MAPE {own.loo_mape:.1f}%; mb model alone {res['factor_1']['mape']:.1f}%")
        for donor, r in res["donors"].items():
            print(f"    from {donor:<17} factor {r['factor']:.3g}  MAPE {r['mape']:6.1f}%  within +-10% "
                  f"{r['within_10']:5.1f}%  worst {r['worst']:6.1f}%  bias {r['bias']:+6.1f}%")
    assert all(key_family(k) == "join" for t in tables.values() for k in fit_rows(t, None)["join"][0])
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
