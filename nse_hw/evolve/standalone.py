"""Score architectures the short, stand-alone way: each built alone at the proxy, trained a few hundred steps (the
search's weight optimiser at ``baseline.lr``, cosine to 0) on the weight split, scored on the whole held-out split.

Random search scores its draws this way (:func:`train_and_score`, top-1), NSE's optional re-rank
(``evolve.rerank``) its last round's best archs, and successive halving (``evolve.halving``, :func:`halve`) a
candidate list in rungs: every candidate of a rung trains from the same initial seed on the same data stream, is
scored by its held-out loss (NLL: less noisy than top-1 on the same images), and the best part goes on to a longer
rung."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nse_hw.blocks import build_network
from nse_hw.blocks.fast import crop_dead_taps
from nse_hw.errors import NseError
from nse_hw.evolve.context import Context, cycle, derive_seed
from nse_hw.evolve.pareto import Candidate
from nse_hw.evolve.trainer import weight_optimizer
from nse_hw.space import Layer, adapt_arch, format_layer

log = logging.getLogger(__name__)
TRAIN = 12  # purpose of the derived seeds (init and data order of the index-th scored arch)
HALVING = 13  # purpose of the one init seed every successive-halving candidate starts from


def train_alone(ctx: Context, choices: list[Layer], *, steps: int, seed: int) -> nn.Module:
    """The proxy network of ``choices`` initialised from ``seed`` and trained ``steps`` steps (cosine LR to 0) on
    the weight split; the data order depends on the run seed only, so every architecture sees the same batches."""
    cfg, p = ctx.cfg, ctx.proxy
    arch = adapt_arch(ctx.space.arch(choices), resolution=p.resolution, channels=p.channels, classes=p.classes,
                      width_mult=p.width_mult)
    net = build_network(arch, seed=seed)
    if cfg.proxy.crop_dead_taps:
        crop_dead_taps(net, lambda: net.eval()(torch.zeros(2, p.channels, p.resolution, p.resolution)),
                       depthwise_grad=cfg.proxy.depthwise_grad)
    net = net.to(ctx.device, memory_format=ctx.memory_format)
    opt = weight_optimizer(list(net.parameters()), cfg.train.optimizer, lr=cfg.baseline.lr,
                           momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay)
    data = cycle(lambda i: ctx.loader(ctx.data.train, seed=derive_seed(cfg.seed, TRAIN, i), train=True,
                                      distributed=False))
    net.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 0.5 * cfg.baseline.lr * (1 + math.cos(math.pi * step / steps))
        x, y = next(data)
        loss = F.cross_entropy(net(x.to(ctx.device, memory_format=ctx.memory_format)), y.to(ctx.device))
        if not torch.isfinite(loss):
            raise NseError(f"stand-alone arch: loss became NaN/inf at step {step} (lower baseline.lr)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net


@torch.no_grad()
def heldout_scores(ctx: Context, net: nn.Module) -> tuple[float, float]:
    """Mean cross-entropy (NLL) and top-1 of ``net`` on the whole held-out split."""
    net.eval()
    nll = correct = total = 0.0
    for x, y in ctx.loader(ctx.data.heldout, seed=0, train=False, distributed=False):
        logits = net(x.to(ctx.device, memory_format=ctx.memory_format)).float().cpu()
        nll += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        total += int(y.numel())
    if total == 0:
        raise ValueError("held-out split is empty: nothing to score on")
    return nll / total, correct / total


def train_and_score(ctx: Context, choices: list[Layer], index: int) -> float:
    """Train the arch alone for ``baseline.steps`` steps (init seed from ``index``); held-out top-1."""
    net = train_alone(ctx, choices, steps=ctx.cfg.baseline.steps, seed=derive_seed(ctx.cfg.seed, TRAIN, index))
    return heldout_scores(ctx, net)[1]


def rung_score(ctx: Context, choices: list[Layer], *, steps: int) -> tuple[float, float]:
    """Held-out NLL and top-1 of ``choices`` trained ``steps`` steps from the one seed every successive-halving
    candidate starts from (NSE's halving and random search's halving scorer alike)."""
    return heldout_scores(ctx, train_alone(ctx, choices, steps=steps, seed=derive_seed(ctx.cfg.seed, HALVING)))


def halving_plan(n_candidates: int, rungs: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """(candidates, steps) per rung for ``n_candidates`` inputs: each rung keeps at most its count and at most the
    previous rung's; a rung that would keep as many as the one before it with no more steps is an error."""
    plan, n = [], n_candidates
    for i, (keep, steps) in enumerate(rungs):
        n = min(n, int(keep))
        if plan and n == plan[-1][0] and steps <= plan[-1][1]:
            raise ValueError(f"evolve.halving rung {i + 1} ({keep} x {steps} steps) neither narrows the field nor "
                             "trains longer than the rung before it")
        plan.append((n, int(steps)))
    return plan


def halve(ctx: Context, cands: list[Candidate], rungs: Sequence[Sequence[int]], *, kind: str, first: int = 1,
          ) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Successive halving of ``cands`` (best first: the first rung takes the head of the list); ``first``: the
    number of its first rung in the records (2 where the caller ran rung 1 itself, as random search does).

    Returns the last rung's candidates, best first, with ``acc`` = -NLL (so the larger is the better, as for
    every score the final rule reads) and a record of every rung."""
    if not cands:
        raise NseError("successive halving: no candidate to rank")
    pool, record = list(cands), []
    for r, (n, steps) in enumerate(halving_plan(len(cands), rungs), start=first - 1):
        scored = []
        for i, c in enumerate(pool[:n]):
            nll, top1 = rung_score(ctx, c.choices, steps=steps)
            scored.append((nll, c))
            record.append({"rung": r + 1, "steps": steps, "layers": [format_layer(x) for x in c.choices],
                           "ms": round(c.ms, 4), "prior_score": round(c.acc, 5), "nll": round(nll, 5),
                           "top1": round(top1, 5)})
            log.info("halving rung %d, %d/%d: %.2f ms, %d steps alone: NLL %.4f, top-1 %.4f", r + 1, i + 1, n,
                     c.ms, steps, nll, top1)
        scored.sort(key=lambda t: (t[0], -t[1].ms))  # the lower loss first; on a tie the slower (the pick rule's)
        pool = [Candidate(c.choices, c.ms, -nll, kind=kind) for nll, c in scored]
    return pool, record
