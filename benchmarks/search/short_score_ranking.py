"""Issue 8, item 2's second half: how well does random search's short-training score rank architectures?

Protocol (fixed before running): the architectures that already have stand-alone retrains on this proxy:
the 24 last-round in-window architectures of the path-sampling study (12 per variant, one `--preset default`
retrain each, seed 0; benchmarks/search/path-sampling.json) and the 8 uniform in-window draws of the proxy-spread study
(benchmarks/search/proxy-spread.json; default recipe, seeds 0 and 1). Each is scored as `nse-hw search --baseline
random` scores its draws (``nse_hw.evolve.standalone.train_and_score``: the default search preset's proxy,
``baseline.steps`` steps alone on the weight split, held-out top-1 on its 1024 images), with search seeds 0
and 1 (two short-training runs: the score's own noise). Reported: Kendall τ and Spearman ρ between the short
score (mean of the two seeds, and seed 0 alone, the score a search uses) and the retrained default-recipe test
top-1 (mean of the retrains an arch has), over all 32 and over each set; the two short runs' agreement (τ between
them); the τ a perfect ranker reaches against one default retrain (``tau_ceiling`` of the proxy-spread ICC).

    taskset -c 0 .venv/bin/python benchmarks/search/short_score_ranking.py      # ~20 min on one core; resumes

Second protocol, `--set benchmark` (fixed on 2026-11-30, before any of its scores): the search-quality
benchmark's rank set (benchmarks/search/search-quality.json: the 12 last-round in-window archs of NSE at 80 ms, seed 0,
picked at evenly spaced supernet ranks, each retrained once with `--preset bench`), scored the same way (search
seeds 0 and 1); τ and ρ against those retrains, beside the supernet's own τ on the same 12 (search_quality.py
summary). Output: benchmarks/search/short-score-ranking-bench.json.

    taskset -c 0 .venv/bin/python benchmarks/search/short_score_ranking.py --set benchmark   # ~4 min on one core
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from proxy_spread import PROTOCOLS, draw_archs

from nse_hw.atomic import atomic_write_json
from nse_hw.evolve import load_search_config, parse_latency, preset_path, resolve_table
from nse_hw.evolve.context import Context
from nse_hw.evolve.quality import rank_correlation, tau_ceiling
from nse_hw.evolve.rundir import RunInfo
from nse_hw.evolve.standalone import train_and_score
from nse_hw.space import format_layer, load_arch, load_space, parse_layer

HERE = Path(__file__).resolve().parent
OUT = HERE / "short-score-ranking.json"
SEEDS = (0, 1)


def archs() -> list[dict]:
    """Every arch with its per-layer choices (as strings) and its default-recipe retrain accuracies (points)."""
    out = []
    ps = json.loads((HERE / "path-sampling.json").read_text())
    for r in ps["records"]:
        if r.get("kind") == "train":
            out.append({"id": r["id"], "set": f"path-sampling/{r['variant']}", "layers": r["layers"],
                        "retrained": [100 * r["test_top1"]]})
    spread = json.loads((HERE / "proxy-spread.json").read_text())
    proto = PROTOCOLS["main"]
    space = load_space(proto["space"])
    for i, path in enumerate(draw_archs(proto, Path("runs/proxy-spread"))):
        accs = [100 * r["test_top1"] for r in spread["records"]
                if r.get("recipe_name") == "default" and r.get("arch_index") == i]
        layers = [format_layer(ch) for ch in space.choices_of(load_arch(path))]
        out.append({"id": f"spread/arch{i:02d}", "set": "proxy-spread", "layers": layers, "retrained": accs})
    return out


def bench_archs(source: Path) -> list[dict]:
    """The benchmark's rank set: each arch's layers and its bench retrain (points; empty until it has run)."""
    recs = json.loads(source.read_text())["records"]
    nse = next(r for r in recs if r["id"] == "search/80ms/nse/seed0")
    trained = {r["rank"]: 100 * r["test_top1"] for r in recs if r["kind"] == "train" and r["method"] == "rank"}
    return [{"id": f"rank{c['rank']:03d}", "set": "benchmark", "layers": c["layers"], "supernet": c["acc"],
             "retrained": [trained[c["rank"]]] if c["rank"] in trained else []} for c in nse["rank_picks"]]


def context(seed: int) -> Context:
    """What `nse-hw search --latency 80ms --device pixel1 --baseline random --seed SEED` builds (no run dir)."""
    cfg = load_search_config(preset_path("default"), seed=seed)
    info = RunInfo(parse_latency("80ms"), str(resolve_table(device="pixel1", table=None).path), "pixel1", "random")
    return Context.build(cfg, info, SimpleNamespace())  # type: ignore[arg-type]  # nothing is written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=["studies", "benchmark"], default="studies")
    ap.add_argument("--source", default=str(HERE / "search-quality.json"), help="--set benchmark: its results JSON")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    studies = args.set == "studies"
    out = OUT if studies else HERE / "short-score-ranking-bench.json"
    protocol = __doc__.split("\n\n")[1 if studies else 3]
    res = json.loads(out.read_text()) if out.exists() else {"protocol": protocol, "scores": {}}
    items = archs() if studies else bench_archs(Path(args.source))
    for seed in SEEDS:
        ctx = context(seed)
        for i, a in enumerate(items):
            rid = f"{a['id']}/s{seed}"
            if rid in res["scores"]:
                continue
            t = time.process_time()
            acc = train_and_score(ctx, [parse_layer(x) for x in a["layers"]], i)
            res["scores"][rid] = {"score": acc, "cpu_s": round(time.process_time() - t, 2)}
            atomic_write_json(out, res)
            print(f"{rid}: {acc:.4f} ({res['scores'][rid]['cpu_s']} CPU s)", flush=True)
    if not studies:
        bench_summary(res, items, out)
        return
    spread = json.loads((HERE / "proxy-spread.json").read_text())
    icc = spread["summary"]["default"]["anova"]["icc"]
    summary = {"tau_ceiling_one_default_retrain": tau_ceiling(icc, retrains=1)}
    for name, keep in (("all", lambda a: True), ("path-sampling", lambda a: a["set"].startswith("path")),
                       ("proxy-spread", lambda a: a["set"] == "proxy-spread")):
        summary[name] = short_correlations(res, [a for a in items if keep(a)])
    res["summary"] = summary
    atomic_write_json(OUT, res)
    print(json.dumps(summary, indent=1))


def short_correlations(res: dict, sel: list[dict]) -> dict:
    """τ/ρ of the short score (mean of the seeds; seed 0) against each arch's mean retrain, and seed 0 vs 1."""
    s = {seed: [res["scores"][f"{a['id']}/s{seed}"]["score"] for a in sel] for seed in SEEDS}
    truth = [float(np.mean(a["retrained"])) for a in sel]
    return {"mean_of_seeds": rank_correlation(np.mean([s[x] for x in SEEDS], axis=0), truth),
            "seed0": rank_correlation(s[0], truth), "seed0_vs_seed1": rank_correlation(s[0], s[1])}


def bench_summary(res: dict, items: list[dict], out: Path) -> None:
    sel = [a for a in items if a["retrained"]]
    if len(sel) < 3:
        print(f"{len(sel)} of {len(items)} rank archs retrained so far: no correlation yet")
        return
    truth = [a["retrained"][0] for a in sel]
    res["summary"] = {"archs": len(sel), **short_correlations(res, sel),
                      "supernet": rank_correlation([a["supernet"] for a in sel], truth)}
    atomic_write_json(out, res)
    print(json.dumps(res["summary"], indent=1))


if __name__ == "__main__":
    main()
