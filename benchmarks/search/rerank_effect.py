"""Issue 8's lever: does re-ranking NSE's last round by short stand-alone training (`evolve.rerank`) make NSE
beat random search at equal compute? On 12 archs of NSE's last round the supernet's score ranks the retrained
networks at Kendall tau -0.21, random search's short score at +0.64 (RESULTS-search.md).

    taskset -c 0 .venv/bin/python benchmarks/search/rerank_effect.py run --cpu 0 --runs /work/rerank-runs
    taskset -c 1 .venv/bin/python benchmarks/search/rerank_effect.py run --cpu 1 --runs /work/rerank-runs
    .venv/bin/python benchmarks/search/rerank_effect.py summary

Protocol (PROTOCOLS["full"] below; fixed on 2026-11-30, committed in 54a3ae6 before any of its runs):

- nse-rerank: each NSE search of search_quality.py's full protocol at 80 ms (seeds 0-4; its run directory with
  checkpoint.pt and rounds/ is needed) is copied, `evolve.rerank: 8` is set in the copy's recorded config and
  the copy is resumed (`nse-hw search --resume`). Every round is done, so the resume only re-ranks and picks:
  the same computation as a fresh search with `evolve.rerank: 8` (tests/evolve/test_search.py checks that they
  agree). 8 = `baseline.archs`, the random search's batch. Its compute: the NSE run's search CPU seconds plus
  the resume's (result.json search_s of each).
- random-matched: `--baseline random` as search_quality.py runs it (NSE's pick rule, CPU clock) with
  baseline.time_s = nse-rerank's total CPU seconds: random search at the re-ranked search's compute.
- Retrain: `--preset bench --seed <search seed>`, pinned, one thread. Where nse-rerank picks exactly NSE's arch,
  NSE's retrain (same arch, seed, recipe and training code) is reused and marked `reused`.
- Summary: test top-1 mean ± SD; paired by seed (t and Wilcoxon p): nse-rerank minus nse, nse-rerank minus
  random-matched, nse-rerank minus random (search_quality's, at NSE's compute); CPU seconds against NSE's.
- Decision rule: the laptop presets turn the re-rank on only if nse-rerank beats NSE as shipped with paired
  t p < 0.05 over the 5 seeds; whether the search then earns its keep is nse-rerank minus random-matched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from search_quality import method_config, search

from nse_hw.evolve.quality import mean_sd, paired_difference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared common/
from common.jobs import Job, Store, die, follow_up, pct, retrain, run_cli, search_arch, seed_accs, seed_cpus  # noqa: E402

FORMAT = "nse-hw/rerank-effect/1"
PROTOCOLS: dict[str, dict[str, Any]] = {
    "full": {"name": "rerank", "source": "benchmarks/search/search-quality.json", "device": "pixel1",
             "space": "nse27-proxyless224", "budget": "80ms", "seeds": [0, 1, 2, 3, 4], "rerank": 8,
             "search_preset": "default", "train_preset": "bench", "random": {"clock": "cpu", "pick": "nse"}},
    # the whole pipeline in minutes, on search_quality.py --smoke's results
    "smoke": {"name": "rerank-smoke", "source": "runs/search-quality-smoke/search-quality.json", "device": "pixel1",
              "space": "nse27-proxyless224", "budget": "80ms", "seeds": [0, 1], "rerank": 2,
              "search_preset": "smoke", "train_preset": "smoke", "random": {"clock": "cpu", "pick": "nse"}},
}


def set_rerank(run: Path, n: int) -> None:
    """``evolve.rerank: n`` in both copies of a run's recorded config (--resume refuses them if they differ)."""
    meta = json.loads((run / "run.json").read_text())
    meta["config"]["evolve"]["rerank"] = n
    (run / "run.json").write_text(json.dumps(meta, indent=1))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["evolve"]["rerank"] = n
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def nse_record(p: dict[str, Any], source: dict[str, Any], kind: str, seed: int) -> dict[str, Any]:
    rid = f"{kind}/{p['budget']}/nse/seed{seed}" + (f"/r{seed}" if kind == "train" else "")
    rec = next((r for r in source["records"] if r["id"] == rid), None)
    if rec is None:
        die(f"{rid} is not in the source JSON: finish search_quality.py's 80 ms runs first", 2)
    return rec


def rerank_search(p: dict[str, Any], store: Store, source: dict[str, Any], runs: Path, seed: int,
                  cpu: int) -> dict[str, Any]:
    budget = p["budget"]
    rid = f"search/{budget}/nse-rerank/seed{seed}"
    if rec := store.get(rid):
        return rec
    nse = nse_record(p, source, "search", seed)
    src, out = Path(nse["run"]), runs / budget / f"nse-rerank-seed{seed}"
    if not (src / "checkpoint.pt").exists():
        die(f"{src}/checkpoint.pt is missing: the re-rank needs the NSE run's directory", 2)
    shutil.rmtree(out, ignore_errors=True)  # a killed re-rank restarts from the copy
    shutil.copytree(src, out)
    set_rerank(out, p["rerank"])
    print(f"re-rank {budget} seed {seed} ...", flush=True)
    t = run_cli(["search", "--resume", str(out)], cpu)
    res = json.loads((out / "result.json").read_text())
    extra, arch = res["search_s"]["cpu"], json.loads((out / "arch.json").read_text())
    rec = {"id": rid, "kind": "search", "budget": budget, "seed": seed, "method": "nse-rerank", "run": str(out),
           **t, "rerank_s": res["search_s"], "nse_search_s": nse["search_s"],
           "search_s": {"cpu": round(nse["search_s"]["cpu"] + extra, 2),
                        "wall": round(nse["search_s"]["wall"] + res["search_s"]["wall"], 2),
                        "since": "NSE's start; the re-rank's resume added"},
           "predicted_ms": res["predicted_ms"], "budget_ratio": res["budget_ratio"],
           "proxy_heldout_top1": res["proxy_heldout_top1"], "rerank": res["rerank"],
           "same_pick_as_nse": arch["layers"] == json.loads((src / "arch.json").read_text())["layers"],
           "arch_json": arch}
    print(f"  re-rank {extra:.0f} CPU s on top of NSE's {nse['search_s']['cpu']:.0f}; same pick as NSE: "
          f"{rec['same_pick_as_nse']}", flush=True)
    return store.add(rec)


def matched_config(proto: dict[str, Any], method: str, out: Path, *, nse_cpu_s: float | None) -> Path | None:
    """random-matched: search_quality's random search, its time budget the re-ranked search's CPU seconds."""
    return method_config(proto, "random", out, nse_cpu_s=nse_cpu_s)


def run_step(p: dict[str, Any], store: Store, source: dict[str, Any], runs: Path, cpu: int) -> None:
    budget = p["budget"]
    for seed in p["seeds"]:
        with Job(runs, f"rerank/{seed}") as mine:
            if not mine:
                continue
            rr = rerank_search(p, store, source, runs, seed, cpu)
            tid = f"train/{budget}/nse-rerank/seed{seed}/r{seed}"
            if rr["same_pick_as_nse"] and not store.get(tid):
                nse_train = nse_record(p, source, "train", seed)
                store.add({**nse_train, "id": tid, "method": "nse-rerank", "reused": nse_train["id"]})
            retrain(store, p, search_arch(rr), runs / budget / f"train-nse-rerank-seed{seed}-r{seed}", tid, cpu,
                    budget=budget, seed=seed, method="nse-rerank", retrain_seed=seed)
            rm = search(store, p, runs, budget, seed, "random-matched", cpu, configure=matched_config,
                        cpu_from="nse-rerank")
            retrain(store, p, search_arch(rm), runs / budget / f"train-random-matched-seed{seed}-r{seed}",
                    f"train/{budget}/random-matched/seed{seed}/r{seed}", cpu, budget=budget, seed=seed,
                    method="random-matched", retrain_seed=seed)


def summarize(p: dict[str, Any], store: Store, source: dict[str, Any]) -> dict[str, Any]:
    store.refresh()  # the other driver's latest records
    budget = p["budget"]

    mine = store.data["records"]
    acc = {m: seed_accs(source["records"], m, budget) for m in ("nse", "random")}
    acc.update({m: seed_accs(mine, m, budget) for m in ("nse-rerank", "random-matched")})
    nse_cpu = seed_cpus(source["records"], "nse", budget)
    rr = acc["nse-rerank"]
    out: dict[str, Any] = {
        "test_top1": {m: {**mean_sd(list(a.values())), "per_seed": a} for m, a in acc.items()},
        "rerank_minus": {m: paired_difference(rr, acc[m]) for m in ("nse", "random-matched", "random")},
        "cpu_vs_nse": {m: mean_sd([c[k] / nse_cpu[k] for k in c if k in nse_cpu])
                       for m, c in (("nse-rerank", seed_cpus(mine, "nse-rerank", budget)),
                                    ("random-matched", seed_cpus(mine, "random-matched", budget)))},
        "same_pick_as_nse": sum(bool(s.get("same_pick_as_nse")) for s in mine if s["kind"] == "search"
                                and s["method"] == "nse-rerank")}
    store.write(lambda d: d.update(summary=out))

    for m, d in out["test_top1"].items():
        print(f"{m}: {pct(d)}")
    for m, d in out["rerank_minus"].items():
        print(f"nse-rerank minus {m}: {pct(d)} pt, t p {d.get('t_p')}, Wilcoxon p {d.get('wilcoxon_p')}")
    for m, d in out["cpu_vs_nse"].items():
        print(f"{m}: search CPU x{d.get('mean')} of NSE's")
    print(f"re-rank kept NSE's pick in {out['same_pick_as_nse']} seeds")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["run", "summary"])
    smoke = "--smoke" in sys.argv
    ap.add_argument("--smoke", action="store_true", help="the smoke protocol, on search_quality.py --smoke's JSON")
    p = PROTOCOLS["smoke" if smoke else "full"]
    name = "rerank-effect" + ("-smoke" if smoke else "")
    args, store, runs, source = follow_up(ap, p, FORMAT, out=f"runs/{name}/{name}.json" if smoke else
                                          f"benchmarks/search/{name}.json", runs=f"runs/{name}")
    if args.step == "run":
        run_step(p, store, source, runs, args.cpu)
    summarize(p, store, source)


if __name__ == "__main__":
    main()
