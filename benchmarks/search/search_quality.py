"""Issue 8: does the search earn its keep? NSE vs random search at equal compute, NSE's two ablations and a
MobileNetV2-style network, every result retrained with one recipe; plus the supernet's ranking quality.

    taskset -c 0 .venv/bin/python benchmarks/search/search_quality.py [all|methods|rank|summary] [--smoke] [--cpu 0]
    taskset -c 1 .venv/bin/python benchmarks/search/search_quality.py --protocol ct48 --cpu 1   # issue 21, part 3

The protocol (PROTOCOLS below) is fixed before running and stored in the JSON; a re-run with another protocol is
refused. Every finished search or retrain is appended to the JSON at once (atomic write) and skipped on a re-run,
so the driver resumes after a kill (a killed search or retrain resumes from its last checkpoint; a resumed
search's clock adds the seconds its checkpoint recorded, so its time is one uninterrupted run's). Each job is the
real CLI in a subprocess pinned with taskset to --cpu, OMP_NUM_THREADS=1, --threads 1. Methods, per (budget, seed):

- nse: `nse-hw search` with the preset as shipped.
- random: `--baseline random` with baseline.time_s = that NSE run's search CPU seconds (result.json search_s;
  the arch in flight finishes, so random gets at least NSE's compute) and baseline.pick: nse (NSE's final rule,
  evolve.final_tie_se included).
- fixed-subspace / full-pool: nse_hw.evolve.ablation (one round, NSE's first K-op subspace / every op; the
  shipped run's total weight steps).
- mbv2: no search: mb_k3_e6 in every searchable layer if it fits, else mb_k3_e3 (then e1) everywhere, then layers
  widened back to e6 from the last one to the first while the budget holds (benchmarks/search/compare_retrain.py's
  rule); the same arch for every seed.

A task protocol (issue 21: `ct48`, `ct48-smoke`) merges its ``search_config`` sections into every method's
config (the task, the held-out size, NSE's successive-halving stage), retrains with its ``train_args``, adds
``random-halving`` (random search scoring its draws with NSE's halving scorer, ``baseline.halving``) and runs the
methods in ``side_seeds`` at its first N seeds only.

Retrain: `nse-hw train ARCH --preset P --seed S` (configs/train/fashion-mnist.yaml), retrain seed = search seed
(where another method of the same seed picked the very same network, its retrain is reused: ``reused_from``);
the seed-0 result of every method is also retrained with the finalist seeds (the recipe's own noise). Rank: the
last round's in-window archs of one NSE run, sorted by supernet score, `spread_ranks` picks the ones to retrain.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from compare_retrain import mbv2_style
from quality_report import plot_summary, print_summary, records_table

from nse_hw.atomic import atomic_write_json
from nse_hw.config import from_dict, to_dict
from nse_hw.evolve import load_search_config, parse_latency, preset_path, resolve_table
from nse_hw.evolve.ablation import ABLATIONS, ablation_config
from nse_hw.evolve.config import SearchConfig
from nse_hw.evolve.quality import mean_sd, paired_difference, rank_correlation, round_gains, spread_ranks
from nse_hw.hostcpu import this_cpu
from nse_hw.latency import predict
from nse_hw.space import Arch, load_space, parse_layer, save_arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared common/
from common.jobs import Job, Store, host_label, in_flight, retrain, run_cli, same_host_kind, search_arch, supersede_seed  # noqa: E402

METHODS = ("nse", "random", *ABLATIONS, "mbv2")
PROTOCOLS: dict[str, dict[str, Any]] = {
    # train_preset bench (default on all 54000 images: retrain-seed SD 0.41-0.48 pt against 2.1 for default, by
    # proxy_spread data54k), fixed before the first full run
    "full": {"device": "pixel1", "space": "nse27-proxyless224", "budgets": ["80ms", "100ms"], "seeds": [0, 1, 2, 3, 4],
             "methods": list(METHODS), "search_preset": "default", "train_preset": "bench",
             "finalist_retrain_seeds": [1000, 1001],
             "rank": {"budget": "80ms", "seed": 0, "archs": 12, "retrain_seed": 0},
             "random": {"clock": "cpu", "pick": "nse"}},
    "smoke": {"device": "pixel1", "space": "nse27-proxyless224", "budgets": ["80ms"], "seeds": [0, 1],
              "methods": list(METHODS), "search_preset": "smoke", "train_preset": "smoke",
              "finalist_retrain_seeds": [1000], "rank": {"budget": "80ms", "seed": 0, "archs": 4, "retrain_seed": 0},
              "random": {"clock": "cpu", "pick": "nse"}},
    # issue 21 part 3, values by the rules fixed in RESULTS-search.md before the ranker study's first score: ct48;
    # NSE's train section from supernet_ct48.py (lr and steps x3: the cheapest variant whose supernet learns);
    # evolve.halving: ranker_study.py chose (150, 600), whose τ on 12 (+0.09) is above the supernet score's (-0.12);
    # 20 seeds by power_analysis.py on the pooled 8 x 3 pilot (SD of a paired difference 1.49 points)
    "ct48": {"device": "pixel1", "space": "nse27-proxyless224", "budgets": ["80ms"], "seeds": list(range(20)),
             "methods": ["nse", "random-halving", "random", "fixed-subspace", "mbv2"],
             "side_seeds": {"fixed-subspace": 5, "mbv2": 5}, "search_preset": "default",
             "search_config": {"data": {"source": "ct-fmnist-48", "limit_heldout": 4096},
                               "train": {"lr": 0.006, "epochs_per_round": 6},
                               "evolve": {"halving": [[16, 150], [4, 600]]}},
             "train_args": ["--data", "ct-fmnist-48", "--preset", "bench"], "train_preset": "bench",
             "finalist_retrain_seeds": [], "rank": None, "random": {"clock": "cpu", "pick": "nse"}},
    # the code paths of a task protocol (issue 21 part 3): a task, the halving stage, random search with its scorer
    "ct48-smoke": {"device": "pixel1", "space": "nse27-proxyless224", "budgets": ["80ms"], "seeds": [0, 1],
                   "methods": ["nse", "random-halving", "random", "fixed-subspace", "mbv2"],
                   "side_seeds": {"fixed-subspace": 1, "mbv2": 1}, "search_preset": "smoke",
                   "search_config": {"data": {"source": "ct-fmnist-48"}, "evolve": {"halving": [[4, 3], [2, 6]]}},
                   "train_args": ["--data", "ct-fmnist-48", "--preset", "smoke"], "train_preset": "smoke",
                   "finalist_retrain_seeds": [], "rank": None, "random": {"clock": "cpu", "pick": "nse"}},
}


def method_config(proto: dict[str, Any], method: str, out: Path, *, nse_cpu_s: float | None) -> Path | None:
    """The --config file of ``method`` (None: the preset as shipped): the preset with the protocol's
    ``search_config`` sections merged in (a task, the halving stage), then the method's own changes."""
    if method == "mbv2" or (method == "nse" and not proto.get("search_config")):
        return None
    cfg = to_dict(load_search_config(preset_path(proto["search_preset"])))
    for section, values in proto.get("search_config", {}).items():
        cfg[section].update(values)
    cfg = from_dict(SearchConfig, cfg).check()
    if method.startswith("random"):
        cfg.baseline.time_s = nse_cpu_s
        cfg.baseline.clock, cfg.baseline.pick = proto["random"]["clock"], proto["random"]["pick"]
        cfg.baseline.halving = method == "random-halving"
    elif method != "nse":
        cfg = ablation_config(cfg, method, pool=len(load_space(proto["space"]).pool))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(to_dict(cfg.check()), sort_keys=False))
    return out


def search(store: Store, proto: dict[str, Any], runs: Path, budget: str, seed: int, method: str, cpu: int, *,
           configure: Callable[..., Path | None] = method_config, cpu_from: str = "nse") -> dict | None:
    """``configure``: the --config file of a method (``method_config``'s signature; another benchmark's variants).
    A method named random* is a random search at the CPU seconds of the same seed's ``cpu_from`` search, run
    only on that search's kind of CPU (None here: it waits for a driver on such a host)."""
    rid = f"search/{budget}/{method}/seed{seed}"
    if rec := store.get(rid):
        return rec
    here, is_random = this_cpu(), method.startswith("random")
    ref = search(store, proto, runs, budget, seed, cpu_from, cpu) if is_random else None
    if is_random and not (ref and same_host_kind(ref.get("host"), here)):
        print(f"search {budget} {method} seed {seed} waits for a host of {host_label(ref and ref.get('host'))} "
              f"(its {cpu_from} search's CPU seconds are this search's budget); here: {host_label(here)}", flush=True)
        return None
    out, host_file = runs / budget / f"{method}-seed{seed}", runs / budget / f"{method}-seed{seed}.host.json"
    started_here = host_file.exists() and same_host_kind(json.loads(host_file.read_text()), here)
    # a killed search resumes (its clock too), on the kind of CPU it started on only: its seconds add up
    resume = method != "mbv2" and (out / "run.json").exists() and started_here
    if out.exists() and not resume:
        shutil.rmtree(out)
    atomic_write_json(host_file, here)
    rec: dict[str, Any] = {"id": rid, "kind": "search", "budget": budget, "budget_ms": parse_latency(budget),
                           "seed": seed, "method": method, "run": str(out), "host": here}
    if method == "mbv2":
        table = resolve_table(device=proto["device"], table=None)
        out.mkdir(parents=True)
        arch = mbv2_style(proto["space"], table, parse_latency(budget))
        save_arch(arch, out / "arch.json")
        ms = predict(arch, table).total_ms
        rec.update(wall_s=0.0, cpu_s=0.0, predicted_ms=round(ms, 4), budget_ratio=round(ms / rec["budget_ms"], 4),
                   arch_json=json.loads((out / "arch.json").read_text()))
        return store.add(rec)
    nse_cpu = ref["search_s"]["cpu"] if ref else None
    if resume:
        args = ["search", "--resume", str(out)]
    else:
        cfg = configure(proto, method, runs / "configs" / f"{budget}-{method}-seed{seed}.yaml", nse_cpu_s=nse_cpu)
        how = ["--config", str(cfg)] if cfg else ["--preset", proto["search_preset"]]
        args = ["search", "--latency", budget, "--device", proto["device"], "--space", proto["space"], "--seed",
                str(seed), "--out", str(out), *how, *(["--baseline", "random"] if is_random else [])]
    print(f"search {budget} {method} seed {seed}{' (resumed)' if resume else ''} ...", flush=True)
    rec.update(run_cli(args, cpu))
    res = json.loads((out / "result.json").read_text())
    if res["search_s"].get("resumes"):  # this process ran only the part after the kill: the run's own totals
        rec.update(process_s={"wall": rec["wall_s"], "cpu": rec["cpu_s"]}, wall_s=res["search_s"]["wall"],
                   cpu_s=res["search_s"]["cpu"])
    rec.update({k: res.get(k) for k in ("predicted_ms", "budget_ratio", "proxy_heldout_top1", "proxy_heldout_nll",
                                        "search_s", "archs", "time_budget")})
    rec["round_best"] = [r["best_acc"] for r in res.get("rounds", [])]
    rec["round_paired_gain"] = [r.get("paired_gain") for r in res.get("rounds", [])]
    # the JSON alone resumes the benchmark (a later session may not have the run directories)
    rec["arch_json"] = json.loads((out / "arch.json").read_text())
    r = proto.get("rank") or {}
    if method == "nse" and (budget, seed) == (r.get("budget"), r.get("seed")):
        rec["rank_picks"] = rank_archs(out, r["archs"])
    print(f"  {rec['wall_s']:.0f} s wall, {rec['cpu_s']:.0f} s CPU; {rec['predicted_ms']:.2f} ms "
          f"({rec['budget_ratio']:.3f} of budget), proxy score {proxy_score(rec)}", flush=True)
    return store.add(rec)


def proxy_score(rec: dict[str, Any]) -> str:
    """The score the pick was made by: held-out top-1, or NLL after successive halving."""
    if rec.get("proxy_heldout_top1") is not None:
        return f"top-1 {rec['proxy_heldout_top1']:.4f}"
    return f"NLL {rec['proxy_heldout_nll']:.4f}" if rec.get("proxy_heldout_nll") is not None else "-"


def methods_step(store: Store, proto: dict[str, Any], runs: Path, cpu: int, budgets: list[str]) -> None:
    """Seed by seed (every method's search and retrain of one seed, so paired seeds complete first), then the
    finalists' extra retrain seeds. Each (budget, seed) and finalist set is one Job: two drivers on one budget
    share the work."""
    for budget in budgets:
        for seed in proto["seeds"]:
            with Job(runs, f"seed/{budget}/{seed}") as mine:
                for method in methods_of(proto, seed) if mine else ():
                    s = search(store, proto, runs, budget, seed, method, cpu)
                    if s is None:  # waits for another kind of CPU
                        continue
                    rid = f"train/{budget}/{method}/seed{seed}/r{seed}"
                    if not store.get(rid) and (twin := twin_retrain(store, proto, s, method)):
                        print(f"retrain {rid}: the network and seed of {twin['id']}, reused", flush=True)
                        store.add({**twin, "id": rid, "method": method, "arch": str(search_arch(s)),
                                   "reused_from": twin["id"], "wall_s": 0.0, "cpu_s": 0.0})
                    retrain(store, proto, search_arch(s), runs / budget / f"train-{method}-seed{seed}-r{seed}",
                            rid, cpu, recipe=proto.get("train_args"), budget=budget, seed=seed, method=method,
                            retrain_seed=seed)
    seed = proto["seeds"][0]
    for budget in budgets:
        for method in proto["methods"] if proto["finalist_retrain_seeds"] else ():
            with Job(runs, f"finalist/{budget}/{method}") as mine:
                s = first_search(store, proto, runs, budget, method, cpu) if mine else None
                for rs in proto["finalist_retrain_seeds"] if s else ():
                    retrain(store, proto, search_arch(s), runs / budget / f"train-{method}-seed{seed}-r{rs}",
                            f"train/{budget}/{method}/seed{seed}/r{rs}", cpu, recipe=proto.get("train_args"),
                            budget=budget, seed=seed, method=method, retrain_seed=rs)


def twin_retrain(store: Store, proto: dict[str, Any], s: dict[str, Any], method: str) -> dict | None:
    """Another method's retrain, at the budget and seed of search record ``s``, of the very network ``s`` picked
    (``Arch`` equality: ``meta``, the method and its score, aside). A retrain is a pure function of network, seed
    and recipe (ct48: random seed 0's retrain repeated random-halving seed 0's 76.10% to the last canvas), and the
    two random searches read one draw stream, so they often pick the same network: reused, not repeated."""
    budget, seed = s["budget"], s["seed"]
    net = Arch.from_dict(s["arch_json"])
    for m in methods_of(proto, seed):
        other = store.get(f"search/{budget}/{m}/seed{seed}")
        twin = store.get(f"train/{budget}/{m}/seed{seed}/r{seed}")
        if m != method and other and twin and not twin.get("reused_from") and Arch.from_dict(other["arch_json"]) == net:
            return twin
    return None


def methods_of(proto: dict[str, Any], seed: int) -> list[str]:
    """The methods run at ``seed``: all, except those ``side_seeds`` limits to its first N seeds."""
    side = proto.get("side_seeds", {})
    return [m for m in proto["methods"] if m not in side or seed in proto["seeds"][:side[m]]]


def first_search(store: Store, proto: dict[str, Any], runs: Path, budget: str, method: str, cpu: int) -> dict | None:
    """The first seed's search of ``method``, run here if no driver holds that seed (None if one does: it comes
    to the finalists and the rank after its seeds)."""
    seed = proto["seeds"][0]
    with Job(runs, f"seed/{budget}/{seed}") as free:
        return search(store, proto, runs, budget, seed, method, cpu) if free else None


def rank_archs(run: Path, n: int) -> list[dict[str, Any]]:
    """The last round's in-window archs, best supernet score first (ties: faster, then by name), and the
    ``spread_ranks`` pick of ``n`` of them."""
    last = sorted((run / "rounds").glob("round-*.json"))[-1]
    scored = [c for c in json.loads(last.read_text())["scored"] if c["kind"] == "window"]
    scored.sort(key=lambda c: (-c["acc"], c["ms"], c["layers"]))
    return [{**scored[i], "rank": i, "of": len(scored), "round_file": str(last)} for i in spread_ranks(len(scored), n)]


def rank_step(store: Store, proto: dict[str, Any], runs: Path, cpu: int) -> None:
    r = proto["rank"]
    nse = first_search(store, proto, runs, r["budget"], "nse", cpu)
    assert r["seed"] == proto["seeds"][0], "the rank step reads the first seed's NSE run"
    space = load_space(proto["space"])
    for c in nse["rank_picks"] if nse else ():
        with Job(runs, f"rank/{c['rank']}") as mine:
            if not mine:
                continue
            arch = runs / "rank" / f"rank{c['rank']:03d}.json"
            arch.parent.mkdir(parents=True, exist_ok=True)
            save_arch(space.arch([parse_layer(x) for x in c["layers"]], source=f"rank {c['rank']} of {c['of']}"),
                      arch)
            retrain(store, proto, arch, runs / "rank" / f"train-rank{c['rank']:03d}",
                    f"rank/{r['budget']}/seed{r['seed']}/rank{c['rank']}", cpu, budget=r["budget"], seed=r["seed"],
                    method="rank", retrain_seed=r["retrain_seed"], score=c["acc"], ms=c["ms"], rank=c["rank"],
                    of=c["of"], layers=c["layers"])


def summarize(store: Store, proto: dict[str, Any]) -> dict[str, Any]:
    store.refresh()  # the other driver's latest records
    trains, searches = store.records("train"), {r["id"]: r for r in store.records("search")}
    out: dict[str, Any] = {"budgets": {}}
    for budget in proto["budgets"]:
        acc = {m: {t["seed"]: t["test_top1"] for t in trains if t["budget"] == budget and t["method"] == m
                   and t["retrain_seed"] == t["seed"]} for m in proto["methods"]}
        srch = {m: [searches[k] for k in searches if k.startswith(f"search/{budget}/{m}/")] for m in proto["methods"]}
        per = {}
        for m in proto["methods"]:
            fin = [t["test_top1"] for t in trains if t["budget"] == budget and t["method"] == m
                   and t["seed"] == proto["seeds"][0]]
            per[m] = {"test_top1": {**mean_sd(list(acc[m].values())), "per_seed": acc[m]},
                      "budget_ratio": mean_sd([s["budget_ratio"] for s in srch[m]]),
                      "search_wall_s": mean_sd([s["wall_s"] for s in srch[m]]),
                      "search_cpu_s": mean_sd([s["cpu_s"] for s in srch[m]]),
                      "finalist_retrain_sd": mean_sd(fin)["sd"], "finalist_retrains": len(fin)}
        # search_s is the search's own clock; up to 2026-12-07 a random search with the halving scorer read it
        # before its later rungs, so the process's CPU seconds (cpu_s; a resumed search's: its search_s) are
        # the fair measure of compute: both are reported
        for key, get in (("search_cpu_vs_nse", lambda s: (s.get("search_s") or {}).get("cpu")),
                         ("process_cpu_vs_nse", lambda s: s.get("cpu_s") if s.get("search_s") else None)):
            nse_cpu = {s["seed"]: get(s) for s in srch["nse"] if get(s)}
            for m in proto["methods"]:
                own = {s["seed"]: get(s) for s in srch[m] if get(s)}
                per[m][key] = mean_sd([own[k] / nse_cpu[k] for k in own if k in nse_cpu])
        diffs = {m: paired_difference(acc["nse"], acc[m]) for m in proto["methods"] if m != "nse"}
        gains = round_gains({s["seed"]: s["round_best"] for s in srch["nse"]})
        out["budgets"][budget] = {"methods": per, "nse_minus": diffs, "nse_round_gains": gains,
                                  "nse_paired_round_gains": paired_gains(srch["nse"])}
    r = proto.get("rank")
    ranks = [t for t in trains if t["method"] == "rank"]
    out["rank"] = {} if r is None else {"budget": r["budget"], "seed": r["seed"], "archs": len(ranks),
                   **(rank_correlation([t["score"] for t in ranks], [t["test_top1"] for t in ranks])
                      if len(ranks) >= 3 else {}),
                   "archs_detail": [{k: t[k] for k in ("rank", "of", "score", "ms", "test_top1")} for t in ranks]}
    out["progress"] = progress(store, proto)
    store.write(lambda d: d.update(summary=out))
    return out


def progress(store: Store, proto: dict[str, Any], *, here: dict[str, Any] | None = None) -> dict[str, Any]:
    """Jobs done of those planned (searches and seed retrains; the finalists' and the rank step's apart), the CPU
    hours they took (mixing CPUs: ``hosts`` counts the jobs run on each), and the hours left at the mean CPU seconds
    of each kind's done jobs (a search not yet run: NSE's; before any record: None; a reused retrain is done at no
    cost and left out of the means). ``cpu_h_left_here``: the same at the means of the jobs done on ``here``'s kind
    of CPU only (this host's by default; None until each method left has a job, or NSE a search, on it): a CPU
    second buys about half the work on a Zen 3 VM that it buys on a Zen 4 one."""
    here = this_cpu() if here is None else here
    planned = [(b, m, s) for b in proto["budgets"] for s in proto["seeds"] for m in methods_of(proto, s)]
    recs = {k: [r for r in store.records(k) if r["method"] in proto["methods"]
                and (k == "search" or r.get("retrain_seed") == r.get("seed"))] for k in ("search", "train")}
    done = {k: {(r["budget"], r["method"], r["seed"]): r["cpu_s"] for r in v} for k, v in recs.items()}
    out: dict[str, Any] = {}
    for kind, d in done.items():
        ran = [r for r in recs[kind] if not r.get("reused_from")]
        left = _hours_left(ran, planned, d)
        left_here = _hours_left([r for r in ran if same_host_kind(r.get("host"), here)], planned, d)
        hosts = Counter(host_label(r.get("host")) for r in ran)
        out[kind] = {"done": len(d), "planned": len(planned), "cpu_h": round(sum(d.values()) / 3600, 2),
                     "cpu_h_left": left, "cpu_h_left_here": left_here, "here": host_label(here),
                     "hosts": dict(hosts)}
    return out


def _hours_left(ran: list[dict[str, Any]], planned: list[tuple], done: dict[tuple, float]) -> float | None:
    """CPU hours of the ``planned`` jobs not in ``done``, each at the mean ``cpu_s`` of its method's records in
    ``ran`` (a method without one: NSE's, else the mean of all; None if ``ran`` is empty)."""
    by_method: dict[str, list[float]] = {}
    for r in ran:
        by_method.setdefault(r["method"], []).append(r["cpu_s"])
    means = {m: sum(v) / len(v) for m, v in by_method.items()}
    costs = [c for v in by_method.values() for c in v]
    fallback = means.get("nse") or (sum(costs) / len(costs) if costs else None)
    left = [means.get(m, fallback) for (b, m, s) in planned if (b, m, s) not in done]
    return None if None in left else round(sum(left) / 3600, 1)


def paired_gains(searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round after the first: each seed's best new in-budget arch minus the last front re-scored in the same
    supernet on the same images (result.json rounds[].paired_gain), their mean ± SD, and how many are > 0."""
    per_round: dict[int, dict[Any, float]] = {}
    for s in searches:
        for r, g in enumerate(s.get("round_paired_gain") or []):
            if g is not None:
                per_round.setdefault(r + 1, {})[s["seed"]] = g
    return [{"round": r, **mean_sd(list(g.values())), "positive": sum(v > 0 for v in g.values()), "per_seed": g}
            for r, g in sorted(per_round.items())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", nargs="?", default="all", choices=["all", "methods", "rank", "summary", "supersede"])
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), default="full",
                    help="full (issue 8, Fashion-MNIST), a task's (issue 21), or a smoke run of either")
    ap.add_argument("--smoke", action="store_true", help="= --protocol smoke (whole pipeline, minutes)")
    ap.add_argument("--cpu", type=int, default=0, help="core every job is pinned to (taskset -c)")
    ap.add_argument("--out", help="results JSON (default: benchmarks/search/search-quality.json; smoke: under --runs)")
    ap.add_argument("--runs", help="run directories (default: runs/search-quality[-smoke])")
    ap.add_argument("--budget", help="only this budget's searches and retrains (run one driver per budget and "
                                     "core on the same --out; the rank step runs with its own budget)")
    ap.add_argument("--seed", type=int, help="supersede: the seed whose NSE and random searches run again "
                                             "(ct48's end rule)")
    ap.add_argument("--why", help="supersede: the reason, kept with the records set aside")
    args = ap.parse_args()
    name = "smoke" if args.smoke else args.protocol
    proto, smoke = PROTOCOLS[name], "smoke" in name
    if args.budget and args.budget not in proto["budgets"]:
        ap.error(f"--budget must be one of {', '.join(proto['budgets'])}")  # one line, exit 2
    budgets = [args.budget] if args.budget else proto["budgets"]
    runs = Path(args.runs or f"runs/search-quality{'' if name == 'full' else '-' + name}")
    default = f"benchmarks/search/search-quality{'' if name == 'full' else '-' + name}.json"
    out = Path(args.out or (runs / "search-quality.json" if smoke else default))
    runs.mkdir(parents=True, exist_ok=True)
    store = Store(out, {"name": name, **proto}, lock=runs / "results.lock")  # jobs.STORE_FORMAT
    t = time.perf_counter()
    if args.step == "supersede":
        if args.seed is None or not args.why or len(budgets) != 1:
            ap.error("supersede needs --seed, --why and (with several budgets) --budget")
        tied = ["nse", *[m for m in proto["methods"] if m.startswith("random")]]  # compared at equal CPU seconds
        ids = supersede_seed(store, runs, budget=budgets[0], seed=args.seed, methods=tied, why=args.why)
        print(f"set aside {len(ids)} records of seed {args.seed} ({', '.join(ids)}); the drivers run it again")
        return
    if args.step in ("all", "methods"):
        methods_step(store, proto, runs, args.cpu, budgets)
    if proto.get("rank") and (args.step == "rank" or (args.step == "all" and proto["rank"]["budget"] in budgets)):
        rank_step(store, proto, runs, args.cpu)
    summary = summarize(store, proto)
    print_summary(summary)
    for budget in summary["budgets"]:
        print(f"\n{budget} records by seed (test top-1 %, search CPU s, CPU):\n"
              f"{records_table(store.records('search') + store.records('train'), budget, list(proto['methods']))}")
    for line in in_flight(runs):
        print(line)
    plot_summary(summary, out.with_suffix(".png"))
    print(f"\n{out}, {out.with_suffix('.png')} ({time.perf_counter() - t:.0f} s this call)")


if __name__ == "__main__":
    main()
