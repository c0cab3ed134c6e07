"""Issue 21: does NSE's supernet learn on ct-fmnist-48 within a search's budget? Exploratory, before part 3's values.

The ranker study's supernet score (one round of the `default` preset, 2 x 400 Adam steps at lr 0.002, on the union
of the 12 archs' ops) left every path at chance on ct48 (held-out top-1 8.8-11.2% on 4096 canvases, seed 0), while
the same archs trained alone reach 40-48% in 600 steps. A search whose supernet learns nothing proposes at random.
This script trains the same union supernet (`ranker_study.supernet_scores`, seed 0) with the preset's train
section changed, one variant at a time, and scores the 12 archs' paths as the search scores its candidates:

- `lr3x`: lr 0.006 (800 steps); `steps3x`: 3 x 2 x 400 steps (epochs_per_round 6); `lr3x-steps3x`: both.

Rule, fixed before the first variant ran (2026-12-07 03:50): a variant *learns* if its paths' mean held-out top-1 is
at least 25% (2.5x chance). The cheapest variant that learns (CPU seconds) is the one part 3 gives NSE on ct48; if
none learns, part 3 runs as its rules say and this result is the reason NSE cannot beat random search there.
Kendall τ against the 3-retrain means (the 8 pilot archs, and all 12) is reported beside it, not chosen by (8 archs
cannot separate τs closer than ~0.5).

    taskset -c 1 .venv/bin/python benchmarks/search/supernet_ct48.py            # resumes; prints the table
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ranker_study import HERE, PILOT, Store, archs, retrain_means, supernet_scores

from nse_hw.evolve.quality import rank_correlation

FORMAT = "nse-hw/supernet-ct48/1"
TASK, SEED = "ct48", 0
VARIANTS: dict[str, dict[str, Any]] = {
    "lr3x": {"lr": 0.006},
    "steps3x": {"epochs_per_round": 6},
    "lr3x-steps3x": {"lr": 0.006, "epochs_per_round": 6},
}
LEARNS = 0.25


def report(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant: mean / max path top-1, whether it learns, CPU s, τ on the pilot's 8 and on all 12 archs."""
    means = retrain_means(TASK, 12)
    done = [i for i in range(12) if len(means.get(i, [])) == 3]
    truth = {i: float(np.mean(means[i])) for i in done}
    rows = []
    for name, v in data.get("variants", {}).items():
        top1 = v["top1"]
        row = {"variant": name, "mean_top1": float(np.mean(top1)), "max_top1": float(np.max(top1)),
               "learns": float(np.mean(top1)) >= LEARNS, "cpu_s": v["cpu_s"]}
        for label, idx in (("tau8", [i for i in done if i < PILOT]), ("tau12", done)):
            row[label] = (rank_correlation([top1[i] for i in idx], [truth[i] for i in idx])["kendall_tau"]
                          if len(idx) >= 3 else None)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "supernet-ct48.json")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    runs = Path("runs/supernet-ct48")
    runs.mkdir(parents=True, exist_ok=True)
    store = Store(args.out, __doc__, lock=runs / "store.lock", fmt=FORMAT)
    choices = archs(TASK, runs)
    for name, train in VARIANTS.items():
        if name in store.refresh().get("variants", {}):
            continue
        t = time.process_time()
        top1 = supernet_scores(TASK, SEED, choices, runs, train=train, name=name)
        rec = {"train": train, "top1": top1, "cpu_s": round(time.process_time() - t, 1)}
        store.write(lambda d, name=name, rec=rec: d.setdefault("variants", {}).update({name: rec}))
        print(f"{name}: mean top-1 {np.mean(top1):.4f} ({rec['cpu_s']} CPU s)", flush=True)
    rows = report(store.data)
    store.write(lambda d: d.update(summary=rows))
    print("variant         mean top-1  max top-1  learns  CPU s   τ8     τ12")
    for r in rows:
        tau = ["-" if r[k] is None else f"{r[k]:+.2f}" for k in ("tau8", "tau12")]
        print(f"{r['variant']:<15} {r['mean_top1']:>10.4f}  {r['max_top1']:>9.4f}  {r['learns']!s:>6}  "
              f"{r['cpu_s']:>5.0f}  {tau[0]:>5}  {tau[1]:>5}")


if __name__ == "__main__":
    main()
