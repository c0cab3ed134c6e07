"""Issue 8's code review, the two items left "not changed": does in-round pruning, or the window the extras are
drawn from, change what NSE finds? Each as a variant of the shipped search, retrained and paired with NSE as
shipped (search_quality.py's records) seed by seed.

    taskset -c 0 .venv/bin/python benchmarks/search/review_ablations.py run --cpu 0 --runs /work/review-runs
    taskset -c 1 .venv/bin/python benchmarks/search/review_ablations.py run --cpu 1 --runs /work/review-runs
    .venv/bin/python benchmarks/search/review_ablations.py summary

Protocol (PROTOCOL below; fixed on 2026-11-30, before any of its runs):

- no-prune: `train.prune_threshold` -1e9 (no op is ever pruned within a round; the shipped -2.0 pruned 62 of 105
  (layer, op) pairs in round 1 of the README run).
- extras-near: `latency.extras_window` [0.75, 0.85] (just below the [0.85, 1.0] window, as the official search
  script draws them, instead of the shipped [0.5, 0.85]; benchmarks/search/extras_effect.py measures what the shipped
  extras do).
- Everything else as search_quality.py's full protocol at 80 ms: default search preset, seeds 0-4, retrain
  `--preset bench --seed <search seed>`, one thread pinned per job; a killed search restarts, a killed retrain
  resumes; two drivers share the seeds.
- Summary: each variant's retrained test top-1 mean ± SD, and NSE as shipped minus the variant, paired by seed
  (t-test and Wilcoxon p), with the variant's search CPU seconds against NSE's.
- Decision rule: a variant replaces the shipped setting only if it beats NSE as shipped with paired t p < 0.05
  over the 5 seeds; otherwise the shipped setting stays and the results file gives the difference and its spread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from search_quality import search

from nse_hw.config import from_dict, to_dict
from nse_hw.evolve import load_search_config, preset_path
from nse_hw.evolve.config import SearchConfig
from nse_hw.evolve.quality import mean_sd, paired_difference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared common/
from common.jobs import Job, Store, follow_up, pct, retrain, search_arch, seed_accs, seed_cpus  # noqa: E402

FORMAT = "nse-hw/review-ablations/1"
PROTOCOL: dict[str, Any] = {
    "name": "review", "source": "benchmarks/search/search-quality.json", "device": "pixel1",
    "space": "nse27-proxyless224",
    "budget": "80ms", "seeds": [0, 1, 2, 3, 4], "search_preset": "default", "train_preset": "bench",
    "variants": {"no-prune": {"train.prune_threshold": -1e9},
                 "extras-near": {"latency.extras_window": [0.75, 0.85]}}}


def with_overrides(cfg: SearchConfig, overrides: dict[str, Any]) -> SearchConfig:
    """``cfg`` with dotted keys set (``cfg`` itself unchanged); an unknown key is an error."""
    data = to_dict(cfg)
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = data
        for k in path:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or last not in node:
            raise ValueError(f"unknown config key {key!r}")
        node[last] = value
    return from_dict(SearchConfig, data).check()


def variant_config(proto: dict[str, Any], method: str, out: Path, *, nse_cpu_s: float | None) -> Path:
    """search_quality.search's ``configure``: the shipped preset with variant ``method``'s overrides."""
    cfg = with_overrides(load_search_config(preset_path(proto["search_preset"])), proto["variants"][method])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return out


def run_step(store: Store, runs: Path, cpu: int) -> None:
    p, budget = PROTOCOL, PROTOCOL["budget"]
    for seed in p["seeds"]:
        with Job(runs, f"review/{seed}") as mine:
            for v in p["variants"] if mine else ():
                s = search(store, p, runs, budget, seed, v, cpu, configure=variant_config)
                retrain(store, p, search_arch(s), runs / budget / f"train-{v}-seed{seed}-r{seed}",
                        f"train/{budget}/{v}/seed{seed}/r{seed}", cpu, budget=budget, seed=seed, method=v,
                        retrain_seed=seed)


def summarize(store: Store, source: dict[str, Any]) -> dict[str, Any]:
    store.refresh()  # the other driver's latest records
    budget = PROTOCOL["budget"]

    nse, nse_cpu = seed_accs(source["records"], "nse", budget), seed_cpus(source["records"], "nse", budget)
    out: dict[str, Any] = {"nse": {**mean_sd(list(nse.values())), "per_seed": nse}, "variants": {}}
    for v in PROTOCOL["variants"]:
        acc, cpu = seed_accs(store.data["records"], v, budget), seed_cpus(store.data["records"], v, budget)
        out["variants"][v] = {"test_top1": {**mean_sd(list(acc.values())), "per_seed": acc},
                              "nse_minus": paired_difference(nse, acc),
                              "search_cpu_vs_nse": mean_sd([cpu[k] / nse_cpu[k] for k in cpu if k in nse_cpu])}
    store.write(lambda d: d.update(summary=out))

    print(f"nse as shipped: {pct(out['nse'])}")
    for v, d in out["variants"].items():
        m = d["nse_minus"]
        print(f"{v}: {pct(d['test_top1'])}; NSE minus it {pct(m)} pt, t p {m.get('t_p')}, Wilcoxon p "
              f"{m.get('wilcoxon_p')}; search CPU x{d['search_cpu_vs_nse'].get('mean')}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["run", "summary"])
    args, store, runs, source = follow_up(ap, PROTOCOL, FORMAT, out="benchmarks/search/review-ablations.json",
                                          runs="runs/review-ablations")
    if args.step == "run":
        run_step(store, runs, args.cpu)
    summarize(store, source)


if __name__ == "__main__":
    main()
