"""Issue 8 review item "extras drawn from [0.5, 0.85] x budget": what do NSE's extras change, as shipped?

    .venv/bin/python benchmarks/search/extras_effect.py [--source benchmarks/search/search-quality.json] [--out FILE]

Extras are cheaper architectures scored beside the in-window ones. They may enter a round's Pareto front and
push window archs out of it, but their own ops are never kept (``pareto.kept_ops``), so the only way they can
change a search is by dominating: removing a window or previous arch from the front, and with it the ops only
that arch used, or the final pick. This reads every NSE search of the search-quality benchmark (its rounds'
``scored`` lists; no training, no timing) and recomputes each round's front, kept (layer, op) pairs and pick
with and without the extras. The stored front and kept ops are reproduced first, so the recomputation is the
search's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nse_hw.atomic import atomic_write_json
from nse_hw.evolve.finish import pick_final
from nse_hw.evolve.pareto import Candidate, kept_ops, pareto_front
from nse_hw.space import format_op


def kept_pairs(front: list[Candidate]) -> set[tuple[int, str]]:
    layers = len(front[0].choices)
    return {(j, format_op(o)) for j, ops in enumerate(kept_ops(front, layers)) for o in ops}


def round_effect(d: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    """One round: the front, kept pairs and pick with every scored arch and without the extras."""
    scored = [Candidate.from_dict(c) for c in d["scored"]]
    plain = [c for c in scored if c.kind != "extra"]
    with_x = [scored[i] for i in pareto_front(scored)]
    without = [plain[i] for i in pareto_front(plain)]
    if [c.to_dict() for c in with_x] != d["front"]:
        raise SystemExit(f"round {d['round']}: the recomputed front is not the stored one")
    if kept_pairs(with_x) != {(j, o) for j, ops in enumerate(d["kept"]) for o in ops}:
        raise SystemExit(f"round {d['round']}: the recomputed kept ops are not the stored ones")

    def pick(front: list[Candidate], pool: list[Candidate]) -> list[str]:
        cand, _ = pick_final(front, pool, res["budget_ms"], tie_se=res["pick"]["tie_se"],
                             n_images=res["pick"]["scored_images"])
        return cand.to_dict()["layers"]

    k_with, k_without = kept_pairs(with_x), kept_pairs(without)
    extras = [c for c in scored if c.kind == "extra"]
    window = [c for c in scored if c.kind == "window"]
    return {"round": d["round"], "extras": len(extras),
            "extras_in_front": sum(c.kind == "extra" for c in with_x),
            "front_without_extras": len(without), "front_members_displaced": len(without) - sum(
                c.kind != "extra" for c in with_x),
            "kept_pairs": len(k_with), "kept_pairs_without_extras": len(k_without),
            "pairs_lost_to_extras": len(k_without - k_with),
            "pick_changes": pick(with_x, scored) != pick(without, plain),
            "extras_best_score": max((c.acc for c in extras), default=None),
            "window_median_score": sorted(c.acc for c in window)[len(window) // 2] if window else None,
            "extras_ms_range": [min(c.ms for c in extras), max(c.ms for c in extras)] if extras else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="benchmarks/search/search-quality.json")
    ap.add_argument("--out", default="benchmarks/search/extras-effect.json")
    a = ap.parse_args()
    src = json.loads(Path(a.source).read_text())
    out: dict[str, Any] = {"format": "nse-hw/extras-effect/1", "source": a.source, "runs": []}
    for s in sorted((r for r in src["records"] if r["kind"] == "search" and r["method"] == "nse"),
                    key=lambda r: (r["budget"], r["seed"])):
        run = Path(s["run"])
        if not (run / "result.json").exists():
            print(f"{s['id']}: run directory gone ({run}); skipped")
            continue
        res = json.loads((run / "result.json").read_text())
        rounds = [round_effect(json.loads(f.read_text()), res) for f in sorted((run / "rounds").glob("round-*.json"))]
        out["runs"].append({"id": s["id"], "budget": s["budget"], "seed": s["seed"], "rounds": rounds})
        for r in rounds:
            lo, hi = r["extras_ms_range"] or (float("nan"), float("nan"))
            print(f"{s['id']} round {r['round']}: {r['extras']} extras ({lo:.1f}-{hi:.1f} ms, best score "
                  f"{r['extras_best_score'] or float('nan'):.3f} vs window median {r['window_median_score']:.3f}); "
                  f"in front {r['extras_in_front']}, displaced "
                  f"{r['front_members_displaced']} of {r['front_without_extras']}, kept pairs lost "
                  f"{r['pairs_lost_to_extras']} of {r['kept_pairs_without_extras']}, pick changes: "
                  f"{r['pick_changes']}")
    if not out["runs"]:  # nothing to recompute: keep the committed result rather than overwrite it with none
        print(f"extras_effect: no search run directory of {a.source} is left; {a.out} not rewritten", file=sys.stderr)
        raise SystemExit(2)
    rs = [r for run in out["runs"] for r in run["rounds"]]
    out["total"] = {"rounds": len(rs), "rounds_with_a_displacement": sum(r["front_members_displaced"] > 0 for r in rs),
                    "pairs_lost": sum(r["pairs_lost_to_extras"] for r in rs),
                    "pairs_kept_without_extras": sum(r["kept_pairs_without_extras"] for r in rs),
                    "picks_changed": sum(r["pick_changes"] for r in rs)}
    print("total:", json.dumps(out["total"]))
    atomic_write_json(Path(a.out), out)


if __name__ == "__main__":
    main()
