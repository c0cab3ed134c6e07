"""Random-search baseline in the same space, budget and latency window as NSE.

Architectures are drawn uniformly: per searchable layer a branch count uniform in {0 (where the layer may be
skipped), 1, 2} and that many distinct ops uniform among the layer's budget-feasible pool ops; draws whose
predicted latency is outside the window are rejected. Each accepted architecture is then scored the same way:
built alone (proxy view of the deployment arch, seeded init), trained ``baseline.steps`` SGD steps (cosine lr)
on the weight split with the same data order, and evaluated top-1 on the held-out split. The best one (or,
with ``baseline.pick: nse``, NSE's final rule) is written as arch.json, exactly like an NSE run. With
``baseline.time_s`` the search keeps drawing new archs until that many CPU (or wall) seconds are spent: random
search at NSE's compute. With ``baseline.halving`` every draw is scored as NSE's successive halving scores its
first rung (``evolve.halving``: its steps, one init seed, held-out NLL), draws continue while the time left covers
the later rungs too, and the later rungs rank the best draws as they rank NSE's: the comparison then asks only
whether the supernet's proposals beat uniform ones.

Resumable: after every scored arch a checkpoint holds the scores, the draw queue, the generator's state and the
seconds spent; each arch's training is seeded by its index, so a resumed search scores what the killed one would
have, and its time budget counts the seconds before the kill too (``Clock.resumed``).
"""

from __future__ import annotations

import logging

import numpy as np

from nse_hw.errors import NseError
from nse_hw.evolve.clock import Clock, budget_spent
from nse_hw.evolve.context import Context, derive_seed
from nse_hw.evolve.finish import pick_final, write_final
from nse_hw.evolve.pareto import Candidate, pareto_front
from nse_hw.evolve.standalone import halve, rung_score, train_and_score
from nse_hw.latency import predict
from nse_hw.progress import progress_bar
from nse_hw.space import Layer, format_layer, parse_layer
from nse_hw.train.dist import is_main

log = logging.getLogger(__name__)
UNIFORM = 11
TIME_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}{unit} [{elapsed}<{remaining}]"


def sample_uniform(ctx: Context, n: int, rng: np.random.Generator, *, batch: int = 4096,
                   exclude: set[tuple] | None = None) -> list[list[Layer]]:
    """Up to ``n`` distinct uniform archs (as per-layer choices) with latency in the window, none in ``exclude``
    (a set of ``arch_key``s)."""
    eff = ctx.budget.effective_ms
    lo, hi = ctx.cfg.latency.window[0] * eff, ctx.cfg.latency.window[1] * eff
    feasible = [sorted(f) for f in ctx.latency.feasible_ops(ctx.budget.ms)]
    skippable = [ctx.space.positions[j].skippable for j in ctx.space.searchable]
    found: dict[tuple, float] = {}
    draws = 0
    while len(found) < n and draws < ctx.cfg.evolve.max_draws:
        bits = []
        for ops, sk in zip(feasible, skippable, strict=True):
            count = rng.integers(0 if sk else 1, min(2, len(ops)) + 1, size=batch)
            ranks = np.argsort(rng.random((batch, len(ops))), axis=1).argsort(axis=1)
            bits.append(ranks < count[:, None])
        lat = ctx.latency.batch_ms(bits, [tuple(f) for f in feasible])
        draws += batch
        for r in np.flatnonzero((lat >= lo) & (lat <= hi)):
            key = tuple(tuple(o for o, b in zip(ops, bb[r], strict=True) if b) for ops, bb in zip(feasible, bits,
                                                                                                strict=True))
            if exclude and key in exclude:
                continue
            found.setdefault(key, float(lat[r]))
            if len(found) == n:
                break
    if not found:
        raise NseError(f"random search drew no {'new ' if exclude else ''}architecture in [{lo:.2f}, {hi:.2f}] ms "
                       f"in {draws} draws")
    if len(found) < n:
        log.warning("random search found %d of %d architectures in the window after %d draws", len(found), n, draws)
    return [list(k) for k in found]


def arch_key(choices: list[Layer]) -> tuple:
    return tuple(tuple(c) for c in choices)


def halving_reserve(first_rung_s_per_arch: float, rungs: list[list[int]]) -> float:
    """Seconds the rungs after the first will take, from the first rung's seconds per arch (cost in proportion to
    steps: an over-estimate, as each arch's fixed evaluation cost is scaled too)."""
    steps1 = rungs[0][1]
    return first_rung_s_per_arch * sum(n * steps for n, steps in rungs[1:]) / steps1


def _layers(choices: list[Layer]) -> list[str]:
    return [format_layer(c) for c in choices]


def _restore(ctx: Context, ckpt: dict, rng: np.random.Generator) -> tuple[list[list[Layer]], list[Candidate]]:
    """The queue and scored archs of a random search's checkpoint; ``rng`` is set to its state."""
    try:
        st = ckpt["random"]
        rng.bit_generator.state = st["rng"]
        queue = [[parse_layer(x) for x in ch] for ch in st["queue"]]
        cands = [Candidate([parse_layer(x) for x in ch], float(ms), float(acc), kind="random")
                 for ch, ms, acc in st["scored"]]
    except (KeyError, TypeError, ValueError, NseError) as exc:
        raise NseError(f"{ctx.run.checkpoint} is not a random search's checkpoint "
                       f"({type(exc).__name__}: {exc})") from None
    log.info("resuming after %d scored architectures", len(cands))
    return queue, cands


def random_search(ctx: Context) -> Candidate:
    """Sample, train-and-score, write the pick as arch.json (plus baseline.json with every scored arch).

    Without ``baseline.time_s``: ``baseline.archs`` archs drawn at once (as always). With it: batches of
    ``baseline.archs`` new archs are drawn until the time is spent (see ``budget_spent``)."""
    b = ctx.cfg.baseline
    start = Clock()
    rng = np.random.default_rng(derive_seed(ctx.cfg.seed, UNIFORM))
    ckpt = ctx.run.load_checkpoint()
    clock = start.resumed(ckpt)
    if ckpt is None:
        queue, cands = sample_uniform(ctx, b.archs, rng), []
    else:
        queue, cands = _restore(ctx, ckpt, rng)
    seen = {arch_key(c.choices) for c in cands}
    # with a time budget the bar counts its seconds (so it shows the time left), else the archs
    bar = progress_bar(total=b.time_s or len(queue) + len(cands), unit=f" {b.clock} s" if b.time_s else " arch",
                       desc="random search", disable=not is_main(), bar_format=TIME_BAR if b.time_s else None)
    bar.update(min(clock.seconds(b.clock), b.time_s) if b.time_s else len(cands))
    rungs = ctx.cfg.evolve.halving if b.halving else []

    def reserve() -> float:
        return halving_reserve(clock.seconds(b.clock) / len(cands), rungs) if rungs and cands else 0.0

    while not budget_spent(clock.seconds(b.clock) + reserve(), b.time_s, len(cands), limit=b.archs):
        if not queue:
            if not b.time_s:  # the window held fewer than baseline.archs distinct archs (warned)
                break
            try:
                queue = sample_uniform(ctx, b.archs, rng, exclude=seen)
            except NseError:
                log.warning("random search: no new in-window architecture left after %d; stopping", len(cands))
                break
        ch = queue.pop(0)
        seen.add(arch_key(ch))
        ms = predict(ctx.space.arch(ch), ctx.table).total_ms
        score = -rung_score(ctx, ch, steps=rungs[0][1])[0] if rungs else train_and_score(ctx, ch, len(cands))
        cands.append(Candidate(ch, ms, score, kind="random"))
        if is_main():
            ctx.run.save_checkpoint({"random": {"queue": [_layers(ch) for ch in queue],
                                                "scored": [[_layers(c.choices), c.ms, c.acc] for c in cands],
                                                "rng": rng.bit_generator.state}, "spent": clock.spent()})
        bar.update(min(clock.seconds(b.clock), b.time_s) - bar.n if b.time_s else 1)
        log.info("random arch %d%s: %.2f ms, held-out %s %.4f", len(cands), "" if b.time_s else f"/{b.archs}",
                 ms, "-NLL" if rungs else "top-1", cands[-1].acc)
    bar.close()
    drawn_s = clock.seconds(b.clock)
    extra: dict = {"archs": len(cands), "steps_each": b.steps}
    if rungs:
        ranked = sorted(cands, key=lambda c: (-c.acc, -c.ms))
        if len(rungs) > 1:
            ranked, extra["halving"] = halve(ctx, ranked, rungs[1:], kind="halving", first=2)
        else:
            ranked = [Candidate(c.choices, c.ms, c.acc, kind="halving") for c in ranked]
        best = ranked[0]
        extra["pick"] = {"rule": "lowest held-out NLL of the last successive-halving rung", "rungs": rungs}
    elif b.pick == "nse":
        best, extra["pick"] = pick_final([cands[i] for i in pareto_front(cands)], cands, ctx.budget.ms,
                                         tie_se=ctx.cfg.evolve.final_tie_se, n_images=ctx.heldout_images)
    else:
        best = max(cands, key=lambda c: (c.acc, -c.ms))
    # read after the later rungs: they are part of the search (and of the compute matched to time_s)
    extra["search_s"] = spent = clock.spent()
    if b.time_s:
        extra["time_budget"] = {"seconds": b.time_s, "clock": b.clock, "spent": spent[b.clock],
                                "drawing_stopped_at": round(drawn_s, 2)}
    if is_main():
        ctx.run.write_json(ctx.run.path / "baseline.json", {"budget_ms": ctx.budget.ms,
                                                            "scored": [c.to_dict() for c in cands]})
    write_final(ctx, best, method="random", extra=extra)
    return best
