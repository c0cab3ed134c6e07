"""Issue 21: every proxy pilot so far side by side, what 8 archs x 2 seeds can tell, and what a search could win.

    .venv/bin/python benchmarks/search/pilot_overview.py [--out benchmarks/search/pilot-overview.json]

Reads the pilots' results (``proxy_spread.py``'s JSON files: the same 8 in-window archs, Pixel 1, 80 ms) and prints
for each task and recipe: the seed SD, the architecture-effect SD, ICC(1) with its 95% interval (F distribution),
the F test's p; then how often the adoption rule (ICC >= 0.6 and p < 0.05) passes a pilot of 8 (16, 32) archs x 2
seeds when the task's true ICC is 0.3-0.8 (``icc_rule_power``, exact); and, per pilot, the most any ranker can win
over one blind in-window draw by keeping the best of 16 (arch SD x E[max of 16 normals]), beside the 1 point the
benchmark is to detect; and where NSE's proposals would have to sit in the window for NSE to beat random search
scored by the same halving stage (same candidates count, same scorer: the scorer's gain cancels) by 1 point: their
mean true accuracy 1/arch SD SDs above the window's mean, the Φ(1/arch SD) percentile of in-window archs. Prints
figures and writes them; it trains nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from proxy_spread import arch_groups
from scipy import stats

from nse_hw.atomic import atomic_write_json
from nse_hw.evolve.quality import expected_max_normal, icc_rule_power, selection_gain, variance_components

HERE = Path(__file__).parent
# (label, results files pooled, recipe): every pilot on the same 8 archs, in the order they ran
PILOTS = [
    ("fmnist 32 px, 4 ep, 16k", ["proxy-spread.json"], "default"),
    ("fmnist 32 px, 8 ep, 16k", ["proxy-spread.json"], "default-8ep"),
    ("fmnist 64 px, 4 ep, 16k (4 archs)", ["proxy-spread-res64.json"], "default-64px"),
    ("fmnist 32 px, 4 ep, 54k", ["proxy-spread-data54k.json"], "default-54k"),
    ("fmnist 32 px, 4 ep, 54k, seeds 0-2", ["proxy-spread-data54k.json", "proxy-spread-data54k-seed2.json"],
     "default-54k"),
    ("ct48 bench", ["proxy-spread-ct48.json"], "ct48-bench"),
    ("ct64 bench", ["proxy-spread-ct64.json"], "ct64-bench"),
]
CANDIDATES = 16  # the halving stage's first rung: the most candidates a pick is made from


def groups(files: list[str], recipe: str) -> dict[int, list[float]]:
    """Test top-1 in points per arch, the archs every seed of the pooled files has finished."""
    recs = [r for f in files for r in json.loads((HERE / f).read_text())["records"]
            if r.get("kind") == "train" and r.get("recipe_name") == recipe]
    seeds = {r["retrain_seed"] for r in recs}
    return {i: v for i, v in arch_groups(recs, recipe).items() if len(v) == len(seeds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "pilot-overview.json")
    args = ap.parse_args()
    rows = []
    print(f"{'pilot':<36} archs x seeds  seed SD  arch SD  ICC [95% CI]          F p     best of {CANDIDATES}, "
          "perfect ranker  proposals' percentile for +1")
    for label, files, recipe in PILOTS:
        g = groups(files, recipe)
        a = variance_components(g)
        gain = selection_gain(arch_sd=a["arch_sd"], corr=1.0, k=CANDIDATES)
        pct = float(stats.norm.cdf(1 / a["arch_sd"])) if a["arch_sd"] > 0 else None
        rows.append({"pilot": label, "files": files, "recipe": recipe, "anova": a, "perfect_gain_best_of_16": gain,
                     "proposal_percentile_for_1_point": pct})
        ci = "[{:.2f}, {:.2f}]".format(*a["icc_ci95"])
        print(f"{label:<36} {a['archs']:>5} x {a['seeds']:<5}  {a['seed_sd']:>6.2f}  {a['arch_sd']:>7.2f}  "
              f"{a['icc']:>5.2f} {ci:<15}  {a['f_p']:>6.3f}  +{gain:>4.2f} points  {100 * pct:>5.1f}")
    true_iccs, sizes = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), (8, 16, 32)
    power = {str(n): {str(i): icc_rule_power(icc=i, archs=n, seeds=2, min_icc=0.6) for i in true_iccs}
             for n in sizes}
    print("\nP(the rule ICC >= 0.6 and p < 0.05 passes) for a pilot of N archs x 2 seeds, by the task's true ICC")
    print("N archs  " + "  ".join(f"ICC {i:.1f}" for i in true_iccs))
    for n in sizes:
        print(f"{n:>7}  " + "  ".join(f"{power[str(n)][str(i)]:>7.2f}" for i in true_iccs))
    print(f"\nE[max of {CANDIDATES} standard normals] = {expected_max_normal(CANDIDATES):.3f}")
    report = {"format": "nse-hw/pilot-overview/1", "pilots": rows, "rule_power_2_seeds": power,
              "candidates": CANDIDATES, "expected_max_normal": expected_max_normal(CANDIDATES)}
    atomic_write_json(args.out, report)
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
