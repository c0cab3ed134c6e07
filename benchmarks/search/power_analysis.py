"""Issue 21 item 3: how many seeds the search-quality benchmark needs on a pilot's task, and what they cost.

    .venv/bin/python benchmarks/search/power_analysis.py --pilot benchmarks/search/proxy-spread-ct48.json \
        [--search-cpu-s 1000] [--effect 1.0] [--power 0.8] [--alpha 0.05]

From a pilot (``proxy_spread.py``'s JSON: 8 in-window archs x retrain seeds, its ANOVA), for picks scored by the
mean of 1, 2 or 3 retrains: the SD of one seed's paired difference between two methods (``pick_difference_sd``:
both picks spread like in-window draws, an upper bound) and the seeds a two-sided paired t test needs to detect
``--effect`` points at ``--power`` (``seeds_for_power``, noncentral t); the power 8 seeds would have; and, given a
search's CPU seconds, the core-hours of the benchmark: NSE and both random searches at that many seeds, plus the
fixed-subspace ablation and the MobileNetV2-style network at 5 seeds (the issue's minimum; MobileNetV2-style has
no search). The retrain's CPU seconds are the pilot's mean. Prints only: its output goes into RESULTS-search.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nse_hw.evolve.quality import mean_sd, paired_t_power, pick_difference_sd, seeds_for_power

MAIN_METHODS, MAIN_MIN_SEEDS, SIDE_SEEDS = 3, 8, 5  # nse, random + halving, random; fixed-subspace and mbv2 at 5


def plan(*, anova: dict, retrain_cpu_s: float, search_cpu_s: float | None, effect: float, power: float,
         alpha: float) -> list[dict]:
    """One row per number of retrains a pick is scored by (1-3)."""
    rows = []
    for r in (1, 2, 3):
        sd = pick_difference_sd(arch_sd=anova["arch_sd"], seed_sd=anova["seed_sd"], retrains=r)
        n = max(MAIN_MIN_SEEDS, seeds_for_power(effect=effect, sd=sd, power=power, alpha=alpha))
        row = {"retrains": r, "sd_diff": sd, "seeds": n,
               "power_at_8": paired_t_power(n=MAIN_MIN_SEEDS, effect=effect, sd=sd, alpha=alpha)}
        if search_cpu_s is not None:
            job = search_cpu_s + r * retrain_cpu_s
            cpu = MAIN_METHODS * n * job + SIDE_SEEDS * job + SIDE_SEEDS * r * retrain_cpu_s
            row["core_hours"] = cpu / 3600
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pilot", type=Path, required=True, action="append", help="proxy-spread JSON (repeatable)")
    ap.add_argument("--search-cpu-s", type=float, help="CPU seconds of one search on the task (omit: seeds only)")
    ap.add_argument("--effect", type=float, default=1.0, help="difference to detect, in points [1.0]")
    ap.add_argument("--power", type=float, default=0.8)
    ap.add_argument("--alpha", type=float, default=0.05)
    args = ap.parse_args()
    for path in args.pilot:
        data = json.loads(path.read_text())
        for recipe, s in (data.get("summary") or {}).items():
            if not s.get("anova"):
                print(f"{path.name} {recipe}: not enough finished archs")
                continue
            a = s["anova"]
            cpu = mean_sd([r["cpu_s"] for r in data["records"] if r.get("recipe_name") == recipe])["mean"]
            print(f"{path.name} {recipe}: seed SD {a['seed_sd']:.2f}, arch SD {a['arch_sd']:.2f} points "
                  f"({a['archs']} archs x {a['seeds']} seeds); retrain {cpu:.0f} CPU s (mean of {s['retrains']})")
            print(f"  detect {args.effect:g} point(s), power {args.power:g}, two-sided alpha {args.alpha:g}:")
            print("  retrains/pick  SD of paired diff  seeds  power at 8 seeds  core-hours")
            for row in plan(anova=a, retrain_cpu_s=cpu, search_cpu_s=args.search_cpu_s, effect=args.effect,
                            power=args.power, alpha=args.alpha):
                hours = f"{row['core_hours']:.1f}" if "core_hours" in row else "-"
                print(f"  {row['retrains']:>13}  {row['sd_diff']:>17.2f}  {row['seeds']:>5}  "
                      f"{row['power_at_8']:>16.2f}  {hours:>10}")


if __name__ == "__main__":
    main()
