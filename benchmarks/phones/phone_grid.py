"""MobileNetV2 width x resolution grid on the Pixel 1 against Google's README figures; refusals over the family.

Protocol (fixed before any setup map was fitted; see benchmarks/phones/RESULTS-phones.md):

* The 22 networks of ../shared/device-data/mobilenetv2_pixel1_google_readme.csv: configs/archs/mobilenetv2-1.0-224.json
  (join: sum) scaled by the CSV's width rule (nse_hw.space.scale, head 1280 kept below x1) to its resolution,
  1001 classes. Predicted with latency_tables/pixel1-tflite.json; misses filled by its stored transfer model
  (in memory: the table file is not written).
* The table is one setup (the 2018 block table, ~90 ms for MobileNetV2 1.0/224) and the README another
  (73.8 ms): a setup map is fitted on whole networks of the README and judged on networks kept apart, two ways:
  (a) split: fit on the "cross" (the x1.0 row and the 224-px column: 10 networks), judge on the 12 others;
  (b) leave-one-out over all 22. Both forms (``constant``: one factor; ``parts``: compute / memory / overhead)
  are reported on both protocols.
* The map written to the table (``--write``) is fitted on all 22; its form is the one with the lower
  leave-one-out MAPE (rule fixed in advance; both forms' figures are printed and kept in the metadata).
* Refusals: MobileNetV2, MnasNet-A1, the released ProxylessNAS-Mobile and an arch using every op kind of the
  grammar (MBConv k3-k11, e1-e6, dilations, _se, _hs, rec, multi-branch, skip), at widths x0.35-x2 and
  inputs 96-320 px, joins mean and sum: every network must get a prediction.

    taskset -c 0 .venv/bin/python benchmarks/phones/phone_grid.py [--write]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nse_hw.errors import NseError
from nse_hw.latency import arch_components, load_table, predict
from nse_hw.latency.calibration import error_summary
from nse_hw.latency.setup import FORMS, arch_parts, fit_setup
from nse_hw.latency.table import utc_now
from nse_hw.latency.transfer import fill_missing
from nse_hw.space import Arch, load_arch, parse_layer
from nse_hw.space.scale import scale_arch

REPO = Path(__file__).resolve().parents[2]
CSV = REPO / ".." / "shared" / "device-data" / "mobilenetv2_pixel1_google_readme.csv"
TABLE = REPO / "latency_tables" / "pixel1-tflite.json"
SETUP = "google-readme"
OWN_SETUP = {"name": "proxylessnas-2018",
             "what": "the ProxylessNAS authors' 2018 Pixel 1 block table (TFLite of 2018, blocks timed standalone; "
                     "the same era's TF benchmark tool timed MobileNetV2 1.0/224 at 93.9 ms, "
                     "tensorflow/tensorflow#23131) and the adds of a real benchmark_model profile of the released "
                     "ProxylessNAS-Mobile (80.67 ms); other setups only through meta.setups"}
ALL_OPS = ["mb_k3_e1", "mb_k5_e3_se", "mb_k7_e6_hs", "mb_k9_e3+mb_k11_e6", "mb_k3_e3_d2", "mb_k3_e6_d3_se_hs",
           "rec_k5_e2", "rec_k7_e4+mb_k5_e6", "skip", "mb_k5_e6_se_hs", "mb_k3_e6", "mb_k7_e3+rec_k5_e1"]


def readme_rows() -> list[tuple[float, int, float]]:
    lines = [ln for ln in CSV.read_text().splitlines() if ln and not ln.startswith("#")]
    return [(float(m), int(r), float(ms)) for m, r, ms in csv.reader(lines[1:])]


def grid_arch(base: Arch, width: float, res: int, classes: int = 1001) -> Arch:
    return scale_arch(base, resolution=res, width=width, classes=classes)


def filled(arch: Arch, table) -> None:
    fill_missing([k for c in arch_components(arch, adds_in_ops=table.adds_in_ops) for k, _ in c.keys], table)


def all_ops_arch() -> Arch:
    """ProxylessNAS's skeleton with every op kind of the grammar somewhere."""
    base = load_arch(REPO / "configs/archs/proxylessnas-mobile-released-224.json")
    layers = list(base.layers)
    for i, tok in enumerate(ALL_OPS):  # layers 4-15 keep their widths and strides; "skip" lands on layer 12,
        layers[4 + i] = dataclasses.replace(layers[4 + i], ops=parse_layer(tok))  # a stride-1 same-width one
    return base.with_layers(layers)


def summary(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    s = error_summary(pred, meas)
    s["spearman"] = float(spearmanr(pred, meas).statistic) if len(pred) > 2 else float("nan")
    return s


def show(label: str, s: dict[str, float]) -> None:
    print(f"  {label:<44} n={s['n']:2d}  within +-10% {100 * s['within_10pct']:5.1f}%  MAPE {s['mape']:5.2f}%  "
          f"worst {s['max_abs_pct_err']:5.1f}%  bias {s['bias_pct']:+5.1f}%  rank corr {s['spearman']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true", help=f"store the {SETUP!r} map in {TABLE.name}")
    args = ap.parse_args()
    table = load_table(TABLE)
    base = load_arch(REPO / "configs/archs/mobilenetv2-1.0-224.json")
    rows = readme_rows()
    archs = [grid_arch(base, m, r) for m, r, _ in rows]
    for a in archs:
        filled(a, table)
    parts = [arch_parts(a, table) for a in archs]
    lut = np.array([predict(a, table).lut_sum_ms for a in archs])
    meas = np.array([ms for _, _, ms in rows])
    print(f"MobileNetV2 grid on pixel1 ({len(rows)} networks of {CSV.name}), table setup: "
          f"{(table.meta.get('setup') or {}).get('name', 'unnamed')}")
    show("raw LUT sum (no setup map)", summary(lut, meas))
    cross = np.array([m == 1.0 or r == 224 for m, r, _ in rows])
    judged: dict[str, dict[str, dict[str, float]]] = {}
    for form in FORMS:
        fit = fit_setup([p for p, c in zip(parts, cross, strict=True) if c], list(meas[cross]), form)
        held = np.array([fit.apply(p) for p, c in zip(parts, cross, strict=True) if not c])
        s_split = summary(held, meas[~cross])
        loo = np.empty(len(rows))
        for i in range(len(rows)):
            keep = np.arange(len(rows)) != i
            loo[i] = fit_setup([parts[j] for j in np.flatnonzero(keep)], list(meas[keep]), form).apply(parts[i])
        s_loo = summary(loo, meas)
        show(f"{form}: fit on the cross (10), judge the other 12", s_split)
        show(f"{form}: leave-one-out over 22", s_loo)
        judged[form] = {"split_cross_10_judge_12": s_split, "leave_one_out_22": s_loo}
        worst = int(np.argmax(np.abs(loo / meas - 1)))
        print(f"    worst (leave-one-out): x{rows[worst][0]} {rows[worst][1]} px: {loo[worst]:.1f} ms vs "
              f"{meas[worst]} ms")
    best = min(FORMS, key=lambda f: judged[f]["leave_one_out_22"]["mape"])
    final = fit_setup(parts, list(meas), best)
    print(f"shipped form: {best}, fitted on all 22: {final.coef} (fit MAPE {final.fit_mape:.2f}%)")
    print("per network (shipped map, in-sample):")
    for (m, r, ms), p in zip(rows, parts, strict=True):
        got = final.apply(p)
        print(f"    x{m:<4} {r:3d} px  README {ms:6.1f}  predicted {got:6.1f}  ({100 * (got / ms - 1):+5.1f}%)")
    refusals(table)
    note10 = load_table(REPO / "latency_tables" / "note10-tflite.json")
    print(f"note10 (residual adds inside its ops: {note10.adds_in_ops}):")
    refusals(note10)
    if args.write:
        entry = {"map": final.to_dict(), "created": utc_now(), "form_rule": "lower leave-one-out MAPE",
                 "source": {"file": CSV.name, "sha256": hashlib.sha256(CSV.read_bytes()).hexdigest(),
                            "what": "Google's MobileNetV2 README, Pixel 1 float, one large core (22 networks)"},
                 "fitted_on": "all 22 networks", "judged": judged}
        t = load_table(TABLE)
        t.meta["setups"] = {**(t.meta.get("setups") or {}), SETUP: entry}
        t.meta["setup"] = OWN_SETUP
        t.save()
        print(f"wrote setup {SETUP!r} into {TABLE}")


def refusals(table) -> None:
    nets = {"mobilenetv2": load_arch(REPO / "configs/archs/mobilenetv2-1.0-224.json"),
            "mnasnet-a1": load_arch(REPO / "configs/archs/mnasnet-a1-224.json"),
            "proxylessnas-released": load_arch(REPO / "configs/archs/proxylessnas-mobile-released-224.json"),
            "all-ops": all_ops_arch()}
    n = bad = 0
    why: dict[str, int] = {}
    for name, base in nets.items():
        for join in ("mean", "sum"):
            for w in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4, 2.0):
                for r in (96, 128, 160, 192, 224, 256, 288, 320):
                    a = dataclasses.replace(grid_arch(base, w, r, 1000), join=join)
                    n += 1
                    try:
                        filled(a, table)
                        predict(a, table)
                    except NseError as exc:
                        bad += 1
                        why[name] = why.get(name, 0) + 1
                        if why[name] == 1:
                            print(f"  REFUSED {name} x{w} {r}px {join}: {exc}")
    print(f"refusals: {bad} of {n} networks (4 families x 2 joins x 7 widths x 8 resolutions); per family {why}")


if __name__ == "__main__":
    main()
