"""The speed probe's own test (seed 7 protocol, benchmarks/latency/RESULTS-latency.md): do two tables of this CPU,
built minutes apart, agree once each is put in probe times?

    .venv/bin/python benchmarks/latency/probe_agreement.py --report benchmarks/latency/quick-table-validate-seed7.json \
        --a quick --b full_here [--out benchmarks/latency/probe-agreement-seed7.json]

For each network the report scored, the two tables' LUT sums are compared as built (ms) and in probe times (each
LUT sum over its table's ``meta.speed.reference_ms``: what the sum would be had both been built at one speed).
The protocol's bar: median |difference| in probe times <= 3%. Also printed: each table's probe spread over its
build, and the reference ratio (how much faster or slower the machine ran during one build than the other).
``--entries NEW OLD`` instead compares two full tables of one CPU entry by entry (NEW built with the probe): the
spread of log(NEW/OLD) over entries of >= 0.3 ms, as timed (each entry's probe scaling undone) and on the probe's
scale, split into the part that moves with the timing order (a rolling median over 21 entries: the machine's
drift) and the rest (each entry's own noise, which no probe can take out). Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nse_hw.atomic import atomic_write_json
from nse_hw.latency import load_table

BAR_PCT = 3.0


def agreement(a_ms: np.ndarray, b_ms: np.ndarray, ref_a: float, ref_b: float) -> dict:
    """|a/b - 1| in % per network, as built and in probe times, and their medians."""
    built = 100 * (a_ms / b_ms - 1)
    probe = 100 * ((a_ms / ref_a) / (b_ms / ref_b) - 1)
    return {"median_abs_pct_built": float(np.median(np.abs(built))), "bias_pct_built": float(np.mean(built)),
            "median_abs_pct_probe": float(np.median(np.abs(probe))), "bias_pct_probe": float(np.mean(probe)),
            "max_abs_pct_probe": float(np.max(np.abs(probe))), "reference_ratio_a_over_b": ref_a / ref_b,
            "n": len(a_ms)}


def entry_spread(new: dict, old: dict, *, min_ms: float = 0.3, window: int = 21) -> dict:
    """SDs of log(new/old) per entry, as timed and on the probe scale: total, drift (rolling median in timing
    order) and the rest."""
    ref, ov = new["meta"]["speed"]["reference_ms"], new["meta"]["invoke_overhead"]["ms"]
    keys = [k for k, e in new["entries"].items()
            if "probe_ms" in e and old["entries"].get(k, {}).get("ms", 0) >= min_ms]
    scaled = np.array([new["entries"][k]["ms"] for k in keys])
    probe = np.array([new["entries"][k]["probe_ms"] for k in keys])
    before = np.array([old["entries"][k]["ms"] for k in keys])
    as_timed = (scaled + ov) * probe / ref - ov  # the probe's scaling undone (it was applied before the overhead)
    out = {"n": len(keys), "min_ms": min_ms, "window": window}
    for name, x in (("as_timed", as_timed), ("probe_scale", scaled)):
        r = np.log(x / before)
        h = window // 2
        drift = np.array([np.median(r[max(0, i - h):i + h + 1]) for i in range(len(r))])
        out[name] = {"median_ratio": float(np.exp(np.median(r))), "sd_log": float(r.std()),
                     "sd_log_drift": float(drift.std()), "sd_log_rest": float((r - drift).std())}
    out["corr_as_timed_with_probe"] = float(np.corrcoef(np.log(as_timed / before), np.log(probe))[0, 1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", nargs=2, type=Path, metavar=("NEW", "OLD"))
    ap.add_argument("--report", type=Path)
    ap.add_argument("--a", default="quick")
    ap.add_argument("--b", default="full_here")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.entries:
        out = entry_spread(*(json.loads(p.read_text()) for p in args.entries))
        for name in ("as_timed", "probe_scale"):
            v = out[name]
            print(f"{name:<12} {out['n']} entries >= {out['min_ms']} ms: median NEW/OLD {v['median_ratio']:.3f}, SD of "
                  f"log ratio {v['sd_log']:.3f} (drift {v['sd_log_drift']:.3f}, rest {v['sd_log_rest']:.3f})")
        print(f"correlation of the as-timed log ratio with the probe: {out['corr_as_timed_with_probe']:.2f}")
        if args.out:
            atomic_write_json(args.out, out)
        return
    if not args.report:
        ap.error("give --report (or --entries NEW OLD)")
    rep = json.loads(args.report.read_text())
    a, b = rep[args.a], rep[args.b]
    ta, tb = load_table(a["table"]), load_table(b["table"])
    refs = [(t.meta.get("speed") or {}).get("reference_ms") for t in (ta, tb)]
    if not all(refs):
        raise SystemExit("both tables need a speed probe (meta.speed.reference_ms)")
    out = agreement(np.array(a["lut_sum_ms"]), np.array(b["lut_sum_ms"]), *refs)
    out |= {"a": args.a, "b": args.b, "bar_pct": BAR_PCT, "passes": out["median_abs_pct_probe"] <= BAR_PCT,
            "spread": {name: [{k: r[k] for k in ("min_over_median", "max_over_median")} | {"n": len(r["probe_ms"])}
                              for r in t.meta["speed"]["runs"]] for name, t in ((args.a, ta), (args.b, tb))}}
    print(f"{args.a} vs {args.b}, {out['n']} networks: median |LUT-sum difference| {out['median_abs_pct_built']:.2f}% "
          f"as built (bias {out['bias_pct_built']:+.2f}%), {out['median_abs_pct_probe']:.2f}% in probe times "
          f"(bias {out['bias_pct_probe']:+.2f}%, worst {out['max_abs_pct_probe']:.1f}%); references "
          f"{refs[0]:.4f} / {refs[1]:.4f} ms ({out['reference_ratio_a_over_b']:.3f}x); "
          f"bar <= {BAR_PCT}%: {'passes' if out['passes'] else 'fails'}")
    for name, runs in out["spread"].items():
        print(f"  {name}: probe over its build, min/median {runs[-1]['min_over_median']:.3f}, "
              f"max/median {runs[-1]['max_over_median']:.3f} ({runs[-1]['n']} timings)")
    if args.out:
        atomic_write_json(args.out, out)


if __name__ == "__main__":
    main()
