"""Issue 8, item 3: the retrained accuracy of each NSE round's pick (does a later round pick a better network?).

    .venv/bin/python benchmarks/search/round_picks.py picks                 # read the picks out of the search runs
    taskset -c 0 .venv/bin/python benchmarks/search/round_picks.py train --cpu 0   # retrain (resumable; two drivers)
    .venv/bin/python benchmarks/search/round_picks.py summary

Protocol (fixed on 2026-11-30, before any of its retrains): for every NSE search of ``search_quality.py``'s
full protocol at 80 ms (seeds 0-4), the arch that search would have returned had it stopped after round r:
NSE's final rule (``evolve.finish.pick_final``: the slowest in-budget arch within 1 SE of the most accurate
Pareto arch, as result.json's ``pick`` records it) applied to round r's front and scored archs
(``rounds/round-0r.json``). Round 3's pick is the search's result (checked: the same layers), already retrained
by search_quality.py with the same recipe and seed, so only rounds 1 and 2 are retrained here:
``nse-hw train --preset bench --seed <search seed>``, pinned, one thread. Summary: per round, test top-1 mean ± SD
over seeds and each round minus the last, paired by seed (t-test and Wilcoxon p-values).

``picks`` stores each pick's layers in the JSON, so the run directories are needed only once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nse_hw.evolve.finish import pick_final
from nse_hw.evolve.pareto import Candidate
from nse_hw.evolve.quality import mean_sd, paired_difference
from nse_hw.space import load_space, parse_layer, save_arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared common/
from common.jobs import Job, Store, die, follow_up, retrain  # noqa: E402

FORMAT = "nse-hw/round-picks/1"
PROTOCOL: dict[str, Any] = {"source": "benchmarks/search/search-quality.json", "budget": "80ms",
                            "seeds": [0, 1, 2, 3, 4],
                            "rounds": [1, 2, 3], "retrain_rounds": [1, 2], "train_preset": "bench",
                            "retrain_seed": "the search seed", "space": "nse27-proxyless224"}


def round_pick(run: Path, r: int) -> dict[str, Any]:
    """Round ``r``'s pick of the NSE run in ``run`` under the rule its result.json records."""
    res = json.loads((run / "result.json").read_text())
    d = json.loads((run / "rounds" / f"round-{r:02d}.json").read_text())
    cand, _ = pick_final([Candidate.from_dict(c) for c in d["front"]], [Candidate.from_dict(c) for c in d["scored"]],
                         res["budget_ms"], tie_se=res["pick"]["tie_se"], n_images=res["pick"]["scored_images"])
    return {**cand.to_dict(), "is_final": cand.to_dict()["layers"] == res["layers"]}


def picks_step(store: Store, source: dict[str, Any]) -> None:
    for s in source["records"]:
        if s["kind"] != "search" or s["method"] != "nse" or s["budget"] != PROTOCOL["budget"]:
            continue
        rid = f"picks/seed{s['seed']}"
        if store.get(rid) or not (Path(s["run"]) / "result.json").exists():
            continue
        picks = [round_pick(Path(s["run"]), r) for r in PROTOCOL["rounds"]]
        if not picks[-1]["is_final"]:
            die(f"seed {s['seed']}: the last round's pick is not the search's result; the rule is not the one used", 1)
        store.add({"id": rid, "kind": "picks", "seed": s["seed"], "run": s["run"], "picks": picks})
        print(f"seed {s['seed']}: " + ", ".join(f"round {r}: {p['ms']:.2f} ms, score {p['acc']:.4f}"
                                                for r, p in zip(PROTOCOL["rounds"], picks, strict=True)))


def train_step(store: Store, runs: Path, cpu: int) -> None:
    space = load_space(PROTOCOL["space"])
    for rec in sorted(store.records("picks"), key=lambda x: x["seed"]):
        for r in PROTOCOL["retrain_rounds"]:
            p, seed = rec["picks"][PROTOCOL["rounds"].index(r)], rec["seed"]
            with Job(runs, f"round/{seed}/{r}") as mine:
                if not mine:
                    continue
                arch = runs / f"seed{seed}-round{r}.json"
                save_arch(space.arch([parse_layer(x) for x in p["layers"]], source=f"round {r} pick"), arch)
                retrain(store, PROTOCOL, arch, runs / f"train-seed{seed}-round{r}", f"train/seed{seed}/round{r}", cpu,
                        recipe=["--preset", PROTOCOL["train_preset"]], seed=seed, round=r, retrain_seed=seed,
                        ms=p["ms"], score=p["acc"])


def summarize(store: Store, source: dict[str, Any]) -> dict[str, Any]:
    final = {t["seed"]: t["test_top1"] for t in source["records"] if t["kind"] == "train" and t["method"] == "nse"
             and t["budget"] == PROTOCOL["budget"] and t["retrain_seed"] == t["seed"]}
    acc = {r: {t["seed"]: t["test_top1"] for t in store.records("train") if t["round"] == r}
           for r in PROTOCOL["retrain_rounds"]}
    acc[PROTOCOL["rounds"][-1]] = final
    out = {"rounds": {str(r): {**mean_sd(list(acc[r].values())), "per_seed": acc[r]} for r in PROTOCOL["rounds"]},
           "last_minus": {str(r): paired_difference(final, acc[r]) for r in PROTOCOL["retrain_rounds"]}}
    store.write(lambda d: d.update(summary=out))
    for r, d in out["rounds"].items():
        m = "-" if d["mean"] is None else f"{100 * d['mean']:.2f} ± {100 * (d['sd'] or 0):.2f}"
        print(f"round {r} pick, retrained: {m} % over {len(d['per_seed'])} seeds")
    for r, d in out["last_minus"].items():
        if d.get("mean") is not None:
            print(f"round {PROTOCOL['rounds'][-1]} minus round {r}: {100 * d['mean']:+.2f} pt over {d['n']} seeds, "
                  f"t p {d['t_p']}, Wilcoxon p {d['wilcoxon_p']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["picks", "train", "summary"])
    args, store, runs, source = follow_up(ap, PROTOCOL, FORMAT, out="benchmarks/search/search-quality-rounds.json",
                                          runs="runs/round-picks")
    if args.step == "picks":
        picks_step(store, source)
    elif args.step == "train":
        train_step(store, runs, args.cpu)
    summarize(store, source)


if __name__ == "__main__":
    main()
