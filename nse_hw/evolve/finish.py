"""The end of a search: pick the final architecture, write arch.json, result.json and the latency plot."""

from __future__ import annotations

import logging
import math
from typing import Any

from nse_hw.errors import NseError
from nse_hw.evolve.clock import Clock
from nse_hw.evolve.context import Context
from nse_hw.evolve.pareto import Candidate, pareto_front
from nse_hw.evolve.plots import plot_latency
from nse_hw.evolve.standalone import halve, train_and_score
from nse_hw.latency import predict
from nse_hw.space import Arch, format_layer, save_arch
from nse_hw.train.dist import is_main

log = logging.getLogger(__name__)


def final_candidate(front: list[Candidate], budget_ms: float) -> Candidate:
    """The most accurate Pareto architecture within the budget."""
    fits = [c for c in front if c.ms <= budget_ms]
    if not fits:
        raise NseError(f"no Pareto architecture is within the {budget_ms:g} ms budget (fastest found "
                       f"{min((c.ms for c in front), default=float('nan')):.2f} ms)")
    return max(fits, key=lambda c: (c.acc, -c.ms))


def tied_pick(best: Candidate, scored: list[Candidate], budget_ms: float, band: float) -> Candidate:
    """The slowest in-budget architecture of ``scored`` whose top-1 is within ``band`` of ``best``'s."""
    tied = [c for c in scored if c.ms <= budget_ms and c.acc >= best.acc - band]
    return max(tied + [best], key=lambda c: (c.ms, c.acc))


def tie_band(acc: float, n_images: int, tie_se: float) -> float:
    """``tie_se`` binomial standard errors of a top-1 of ``acc`` measured on ``n_images`` images."""
    return tie_se * math.sqrt(acc * (1.0 - acc) / n_images)


def write_final(ctx: Context, cand: Candidate, *, method: str, extra: dict[str, Any] | None = None) -> Arch:
    """Write the deployment arch of ``cand`` (arch.json), result.json and the latency breakdown plot."""
    arch = ctx.space.arch(cand.choices)
    pred = predict(arch, ctx.table)
    meta = {"method": method, "budget_ms": ctx.budget.ms, "predicted_ms": round(pred.total_ms, 4),
            "table": str(ctx.table.path), "device": ctx.table.meta.get("device"),
            "seed": ctx.cfg.seed}
    score = ("proxy_heldout_nll", -cand.acc) if cand.kind == "halving" else ("proxy_heldout_top1", cand.acc)
    meta[score[0]] = round(score[1], 5)
    arch = ctx.space.arch(cand.choices, **meta)
    if is_main():
        save_arch(arch, ctx.run.arch)
        ctx.run.write_json(ctx.run.result, {
            **meta, "budget_ratio": round(pred.total_ms / ctx.budget.ms, 4), "lut_sum_ms": pred.lut_sum_ms,
            "space_min_ms": ctx.budget.min_ms, "space_max_ms": ctx.budget.max_ms,
            "layers": [format_layer(c) for c in cand.choices], "kind": cand.kind, **(extra or {}),
            "breakdown": pred.to_dict()["layers"]})
        plot_latency(pred, ctx.budget.ms, ctx.run.plots / "latency.png")
    log.info("final architecture: %.2f ms predicted (%.1f%% of the %.2f ms budget), proxy held-out %s %.4f "
             "-> %s", pred.total_ms, 100 * pred.total_ms / ctx.budget.ms, ctx.budget.ms, score[0].split("_")[-1],
             score[1], ctx.run.arch)
    return arch


def pick_final(front: list[Candidate], scored: list[Candidate], budget_ms: float, *, tie_se: float,
               n_images: int) -> tuple[Candidate, dict[str, Any]]:
    """The final rule shared by NSE and (with ``baseline.pick: nse``) random search: the most accurate Pareto
    arch within the budget; with ``tie_se`` > 0, the slowest in-budget arch of ``scored`` within ``tie_se``
    binomial SE of it. Returns the pick and a record of the rule."""
    strict = final_candidate(front, budget_ms)
    band = tie_band(strict.acc, n_images, tie_se)
    cand = tied_pick(strict, scored, budget_ms, band) if tie_se > 0 else strict
    pick = {"rule": f"slowest in-budget arch within {tie_se:g} SE of the most accurate Pareto arch" if tie_se
            else "most accurate Pareto arch within the budget", "tie_se": tie_se, "scored_images": n_images,
            "band": band, "most_accurate_pareto": strict.to_dict()}
    if cand is not strict:
        log.info("final pick: %.2f ms (top-1 %.4f) ties the most accurate Pareto arch, %.2f ms (%.4f), within %g "
                 "SE (%.4f on %d images)", cand.ms, cand.acc, strict.ms, strict.acc, tie_se, band, n_images)
    return cand, pick


ROUND_FIELDS = ("round", "best_acc", "best_ms", "best_new_acc", "best_previous_acc", "paired_gain", "front",
                "candidates", "expected_ms")


def rerank_candidates(scored: list[Candidate], budget_ms: float, n: int) -> list[Candidate]:
    """The ``n`` in-budget archs of ``scored`` with the highest supernet score, extras excluded (they are there
    to compete for dominance, not to be picked); on a tied score the slower first (the pick rule's preference)."""
    fits = [c for c in scored if c.ms <= budget_ms and c.kind != "extra"]
    return sorted(fits, key=lambda c: (-c.acc, -c.ms))[:n]


def rerank(ctx: Context, scored: list[Candidate]) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Short stand-alone scores of the last round's ``evolve.rerank`` best archs: the re-ranked candidates (the
    short score as ``acc``) and a record of both scores for result.json."""
    top = rerank_candidates(scored, ctx.budget.ms, ctx.cfg.evolve.rerank)
    if not top:
        raise NseError(f"re-rank: the last round scored no in-budget architecture (budget {ctx.budget.ms:g} ms)")
    out, record = [], []
    for i, c in enumerate(top):
        acc = train_and_score(ctx, c.choices, i)
        out.append(Candidate(c.choices, c.ms, acc, kind="rerank"))
        record.append({"layers": [format_layer(x) for x in c.choices], "ms": round(c.ms, 4),
                       "supernet_acc": round(c.acc, 5), "short_acc": round(acc, 5)})
        log.info("re-rank %d/%d: %.2f ms, supernet %.4f, alone %d steps %.4f", i + 1, len(top), c.ms, c.acc,
                 ctx.cfg.baseline.steps, acc)
    return out, record


def finish(ctx: Context, history: list[dict[str, Any]], front: list[Candidate],
           scored: list[Candidate], *, clock: Clock) -> Candidate:
    """Pick (after the optional re-rank or successive halving) and write the result; result.json's search_s is
    ``clock``'s wall and CPU seconds, read after the re-rank (it is part of the search)."""
    extra: dict[str, Any] = {}
    rungs = ctx.cfg.evolve.halving
    if rungs:
        top = rerank_candidates(scored, ctx.budget.ms, rungs[0][0])
        if not top:
            raise NseError(f"successive halving: the last round scored no in-budget architecture (budget "
                           f"{ctx.budget.ms:g} ms)")
        ranked, extra["halving"] = halve(ctx, top, rungs, kind="halving")
        cand = ranked[0]
        pick = {"rule": "lowest held-out NLL of the last successive-halving rung", "rungs": rungs,
                "heldout_images": ctx.heldout_images}
    else:
        if ctx.cfg.evolve.rerank:
            scored, extra["rerank"] = rerank(ctx, scored)
            front = [scored[i] for i in pareto_front(scored)]
            n_images = ctx.heldout_images
        else:
            n_images = ctx.scored_images
        cand, pick = pick_final(front, scored, ctx.budget.ms, tie_se=ctx.cfg.evolve.final_tie_se,
                                n_images=n_images)
    write_final(ctx, cand, method="nse", extra={
        "pick": pick, "search_s": clock.spent(), **extra,
        "rounds": [{k: h.get(k) for k in ROUND_FIELDS} for h in history]})
    return cand
