"""Issue 8: does training the supernet on paths as heavy as the ranked archs improve its ranking?

    taskset -c 0 .venv/bin/python benchmarks/search/path_sampling.py --cpu 0 &   # one driver per core, same --out
    taskset -c 1 .venv/bin/python benchmarks/search/path_sampling.py --cpu 1

For each variant of ``train.path_sampling`` ('uniform': every live op on with p = 0.5, the paper's and the
shipped default; 'budget': those probabilities tilted so the paths' expected latency is the round's target),
one `nse-hw search` (default preset, otherwise unchanged), then ``rank.archs`` in-window archs of its last round
at evenly spaced score ranks (``search_quality.rank_archs``) retrained alone with the default recipe, and
Kendall τ / Spearman ρ between supernet score and retrained test top-1. The protocol is fixed before running
and stored in the JSON; finished jobs are recorded at once and skipped on a re-run; two drivers share the job
list (an flock per job).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from search_quality import rank_archs

from nse_hw.config import to_dict
from nse_hw.evolve import load_search_config, preset_path
from nse_hw.evolve.quality import rank_correlation
from nse_hw.space import load_space, parse_layer, save_arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared common/
from common.jobs import Job, Store, retrain, run_cli  # noqa: E402

FORMAT = "nse-hw/path-sampling/1"
PROTOCOL: dict[str, Any] = {
    "device": "pixel1", "space": "nse27-proxyless224", "budget": "80ms", "search_preset": "default", "seed": 0,
    "variants": ["uniform", "budget"], "train_preset": "default", "rank": {"archs": 12, "retrain_seed": 0},
}


def search(store: Store, proto: dict[str, Any], runs: Path, variant: str, cpu: int) -> dict[str, Any] | None:
    rid = f"search/{variant}"
    out = runs / f"search-{variant}"
    with Job(runs, rid) as mine:
        store.refresh()
        if (rec := store.get(rid)) or not mine:
            return rec
        cfg = load_search_config(preset_path(proto["search_preset"]))
        cfg.train.path_sampling = variant
        cfg_path = runs / "configs" / f"{variant}.yaml"
        cfg_path.parent.mkdir(parents=True, exist_ok=True)
        cfg_path.write_text(yaml.safe_dump(to_dict(cfg.check()), sort_keys=False))
        if out.exists():  # a killed search restarts from scratch (its time must be one clean run's)
            shutil.rmtree(out)
        print(f"search {variant} ...", flush=True)
        t = run_cli(["search", "--latency", proto["budget"], "--device", proto["device"], "--space", proto["space"],
                     "--seed", str(proto["seed"]), "--config", str(cfg_path), "--out", str(out)], cpu)
        res = json.loads((out / "result.json").read_text())
        rec = {"id": rid, "kind": "search", "variant": variant, "run": str(out), **t,
               **{k: res.get(k) for k in ("predicted_ms", "budget_ratio", "proxy_heldout_top1", "search_s")},
               "round_best": [r["best_acc"] for r in res.get("rounds", [])],
               "train_acc": [[e["acc"] for e in r["epochs"]] for r in res.get("rounds", []) if "epochs" in r]}
        print(f"  {t['wall_s']:.0f} s; pick {rec['predicted_ms']:.2f} ms, score {rec['proxy_heldout_top1']:.4f}",
              flush=True)
        return store.add(rec)


def rank_jobs(store: Store, proto: dict[str, Any], runs: Path, variant: str, cpu: int) -> None:
    s = store.get(f"search/{variant}")
    if s is None:
        return
    space = load_space(proto["space"])
    for c in rank_archs(Path(s["run"]), proto["rank"]["archs"]):
        rid = f"rank/{variant}/rank{c['rank']:03d}"
        with Job(runs, rid) as mine:
            store.refresh()
            if store.get(rid) or not mine:
                continue
            arch = runs / f"rank-{variant}" / f"rank{c['rank']:03d}.json"
            arch.parent.mkdir(parents=True, exist_ok=True)
            save_arch(space.arch([parse_layer(x) for x in c["layers"]], source=f"{variant}: rank {c['rank']} of "
                                                                               f"{c['of']}"), arch)
            retrain(store, proto, arch, runs / f"rank-{variant}" / f"train-rank{c['rank']:03d}", rid, cpu,
                    variant=variant, retrain_seed=proto["rank"]["retrain_seed"], score=c["acc"], ms=c["ms"],
                    rank=c["rank"], of=c["of"], layers=c["layers"])


def remaining(store: Store, proto: dict[str, Any]) -> int:
    """Jobs not yet recorded: missing searches (counted with their retrains) and missing retrains."""
    store.refresh()
    n = 0
    for v in proto["variants"]:
        s = store.get(f"search/{v}")
        if s is None:
            n += 1 + proto["rank"]["archs"]
            continue
        n += sum(store.get(f"rank/{v}/rank{c['rank']:03d}") is None
                 for c in rank_archs(Path(s["run"]), proto["rank"]["archs"]))
    return n


def summarize(store: Store, proto: dict[str, Any]) -> dict[str, Any]:
    store.refresh()
    out: dict[str, Any] = {}
    for v in proto["variants"]:
        t = sorted((r for r in store.records("train") if r.get("variant") == v), key=lambda r: r["rank"])
        s = store.get(f"search/{v}") or {}
        out[v] = {"search": {k: s.get(k) for k in ("wall_s", "cpu_s", "predicted_ms", "proxy_heldout_top1",
                                                   "round_best", "train_acc")},
                  "archs": [{k: r[k] for k in ("rank", "of", "score", "ms", "test_top1")} for r in t],
                  **(rank_correlation([r["score"] for r in t], [r["test_top1"] for r in t]) if len(t) >= 3 else {})}
        pick = next((r for r in t if r["rank"] == 0), None)
        out[v]["rank0_test_top1"] = pick["test_top1"] if pick else None
    store.write(lambda d: d.update(summary=out))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/search/path-sampling.json")
    ap.add_argument("--runs", default="runs/path-sampling")
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    runs.mkdir(parents=True, exist_ok=True)
    store = Store(out, {"format": FORMAT, **PROTOCOL}, lock=runs / "results.lock")
    t = time.perf_counter()
    while not args.summary and (left := remaining(store, PROTOCOL)):
        before = len(store.data["records"])
        for v in PROTOCOL["variants"]:  # each driver takes the search the other has not
            search(store, PROTOCOL, runs, v, args.cpu)
        for v in PROTOCOL["variants"]:
            rank_jobs(store, PROTOCOL, runs, v, args.cpu)
        store.refresh()
        if len(store.data["records"]) == before:  # the rest is in the other driver's hands: wait
            print(f"waiting for the other driver ({left} jobs left)", flush=True)
            time.sleep(20)
    for v, d in summarize(store, PROTOCOL).items():
        tau = "-" if d.get("kendall_tau") is None else f"{d['kendall_tau']:+.3f} (p {d['kendall_p']:.3g})"
        rho = "-" if d.get("spearman_rho") is None else f"{d['spearman_rho']:+.3f} (p {d['spearman_p']:.3g})"
        pick = "-" if d["rank0_test_top1"] is None else f"{100 * d['rank0_test_top1']:.2f}%"
        print(f"{v:<8} archs {len(d['archs']):>2}  Kendall τ {tau}  Spearman ρ {rho}  pick (rank 0) retrained {pick}")
        for a in d["archs"]:
            print(f"    rank {a['rank']:>3}/{a['of']}: score {a['score']:.4f}  {a['ms']:.2f} ms  "
                  f"test {100 * a['test_top1']:.2f}%")
    print(f"\n{out} ({time.perf_counter() - t:.0f} s this call)")


if __name__ == "__main__":
    main()
