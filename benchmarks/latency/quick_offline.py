"""Judge `profile --quick`'s method on measurements taken on a quiet machine, without timing anything now.

    python benchmarks/latency/quick_offline.py --out benchmarks/latency/quick-offline.json

The full table `host-litert.json` is the truth: its entries are this CPU's, measured quietly, and its report
`benchmarks/latency/latency-validate-host-litert.json` holds 50 whole networks (seed 0) measured on the same CPU, and
its calibration holds 16 more (seed 1000). A quick table is assembled exactly as `profile --quick` does, except
that its 65 "measured" entries are taken from the full table instead of being re-timed: then predict_rest
(the host-to-host transfer) fills the other 248 from a *reference* table, and the affine calibration is fitted on
4 of the seed-1000 networks (their measured times, as `profile --quick` would measure 4 networks). The
reference stands for "another machine's table": there is no table of another CPU here, so each shipped table
with another cost structure is tried in turn (2 threads, ONNX Runtime, ExecuTorch, int8). Scored on the 50
seed-0 networks against their measured times, beside the full table's own figures on the same networks.
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from nse_hw.profilers.netbench import sample_archs
from nse_hw.profilers.quick import QUICK_CAL_NETS, predict_rest, quick_keys
from nse_hw.profilers.units import arch_hash

from nse_hw.latency import LatencyTable, load_table, predict, space_keys
from nse_hw.latency.calibration import error_summary, fit_affine
from nse_hw.space import load_space

ROOT = Path(__file__).resolve().parents[2]
REFS = ("host-litert-t2", "host-onnxruntime", "host-executorch", "host-litert-int8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    space = load_space("nse27-proxyless224")
    keys = space_keys(space)
    full = load_table(ROOT / "latency_tables/host-litert.json")
    val = json.loads((ROOT / "benchmarks/latency/latency-validate-host-litert.json").read_text())
    archs = sample_archs(space, samples=val["samples"], seed=val["seed"])
    assert [arch_hash(a) for a in archs] == [r["arch"] for r in val["archs"]], "validation networks differ"
    meas = np.array([r["measured_ms"] for r in val["archs"]])
    cal = full.meta["calibration"]
    cal_archs = sample_archs(space, samples=cal["n"], seed=cal["seed"])
    assert [arch_hash(a) for a in cal_archs] == [p["arch"] for p in cal["points"]], "calibration networks differ"
    cal_archs, cal_ms = cal_archs[:QUICK_CAL_NETS], [p["measured_ms"] for p in cal["points"][:QUICK_CAL_NETS]]
    sub = quick_keys(keys)
    out: dict = {"truth": "latency_tables/host-litert.json",
                 "validation": "benchmarks/latency/latency-validate-host-litert.json",
                 "networks": len(archs), "measured_keys": len(sub), "predicted_keys": len(keys) - len(sub),
                 "calibration_networks": QUICK_CAL_NETS, "full": {}}

    def scores(table: LatencyTable) -> dict:
        raw = np.array([predict(a, table).lut_sum_ms for a in archs])
        fit = fit_affine([predict(a, table).lut_sum_ms for a in cal_archs], cal_ms)
        return {"raw": error_summary(raw, meas), "calibrated": error_summary(fit.apply(raw), meas),
                "calibration": {"slope": fit.slope, "intercept_ms": fit.intercept_ms, "loo_mape": fit.loo_mape}}

    out["full"] = scores(full)  # the full table with the same 4-network calibration, for comparison
    print(f"full table, same 4 calibration networks: {_fmt(out['full'])}")
    for name in REFS:
        ref = load_table(ROOT / f"latency_tables/{name}.json")
        mine = LatencyTable(dict(full.meta), {k: dict(full.entries[k]) for k in sub})
        quick = predict_rest(mine, ref, keys)
        pred = [k for k in keys if k not in sub]
        e = np.array([quick.ms(k) / full.ms(k) - 1 for k in pred if full.ms(k) > 0.005])
        s = scores(quick) | {"entries": {"n": len(e), "mape": float(100 * np.abs(e).mean()),
                                         "within_10pct": float((np.abs(e) <= 0.1).mean())},
                             "families": quick.meta["quick"]["families"]}
        out[name] = s
        ent = s["entries"]
        print(f"quick from {name:<18} entries MAPE {ent['mape']:5.1f}% ({100 * ent['within_10pct']:.0f}% within ±10%); "
              f"networks {_fmt(s)}")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


def _fmt(s: dict) -> str:
    r, c = s["raw"], s["calibrated"]
    return (f"raw {100 * r['within_10pct']:.0f}% within ±10%, MAPE {r['mape']:.2f}%; calibrated "
            f"{100 * c['within_10pct']:.0f}%, MAPE {c['mape']:.2f}% (worst {c['max_abs_pct_err']:.1f}%)")


if __name__ == "__main__":
    main()
