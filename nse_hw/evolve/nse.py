"""The NSE loop: rounds of {train W and α, sample in-budget archs, score, Pareto, keep/retire/refill, reset}.

Resumable: a checkpoint (supernet, α, optimisers, RNG state, round/epoch, subspaces and queues, Pareto set,
history, seconds spent) is written atomically after every epoch and at every round's end; every random stream is
derived from (seed, round, epoch, purpose), so a resumed run repeats exactly what the killed one would have done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from nse_hw.blocks.fast import crop_dead_taps
from nse_hw.errors import NseError
from nse_hw.evolve.clock import Clock
from nse_hw.evolve.context import Context, cycle, derive_seed
from nse_hw.evolve.finish import finish
from nse_hw.evolve.pareto import Candidate, Subspaces, kept_ops, pareto_front
from nse_hw.evolve.plots import plot_rounds
from nse_hw.evolve.sampling import sample_in_window
from nse_hw.evolve.scoring import score_paths
from nse_hw.evolve.trainer import NanLoss, RoundTrainer
from nse_hw.latency import predict
from nse_hw.progress import format_duration, time_left
from nse_hw.space import Op, parse_op
from nse_hw.supernet import Path, SuperNet
from nse_hw.train.dist import barrier, broadcast_object, is_main

log = logging.getLogger(__name__)
SAMPLE, RECAL, ARCH, INIT, PERM = 1, 2, 3, 4, 5  # purposes of derived seeds


@dataclass
class LoopState:
    round: int
    epoch: int  # epochs finished in this round
    step: int  # weight steps finished in this round
    subspaces: Subspaces
    protected: list[list[Op]]  # kept from the last round: never pruned
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)  # this round's epoch stats
    front: list[Candidate] = field(default_factory=list)  # last round's whole front (extras included)
    done: bool = False
    scored: list[Candidate] = field(default_factory=list)  # every architecture the last round scored

    @property
    def pareto(self) -> list[Candidate]:
        """The last round's front without its extras: the architectures re-scored next round."""
        return [c for c in self.front if c.kind != "extra"]

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "epoch": self.epoch, "step": self.step, "subspaces": self.subspaces.to_dict(),
                "protected": [[str(o) for o in p] for p in self.protected],
                "history": self.history, "epochs": self.epochs,
                "front": [c.to_dict() for c in self.front], "done": self.done,
                "scored": [c.to_dict() for c in self.scored]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopState:
        return cls(d["round"], d["epoch"], d["step"], Subspaces.from_dict(d["subspaces"]),
                   [[parse_op(t) for t in p] for p in d["protected"]], d["history"], d["epochs"],
                   [Candidate.from_dict(c) for c in d["front"]], d["done"],
                   [Candidate.from_dict(c) for c in d.get("scored", [])])


def initial_state(ctx: Context) -> LoopState:
    """Per layer a seeded permutation of the pool (drawn on rank 0, broadcast): the first K ops are the subspace,
    the rest the queue; ops that fit in no in-budget arch are retired up front."""
    k, feasible = ctx.cfg.evolve.subspace_size, ctx.latency.feasible_ops(ctx.budget.ms)
    cur, que, ret = [], [], []
    if is_main():
        for j, ok in enumerate(feasible):
            perm = np.random.default_rng(derive_seed(ctx.cfg.seed, PERM, j)).permutation(len(ctx.space.pool))
            ops = [ctx.space.pool[i] for i in perm]
            live = [o for o in ops if o in ok]
            cur.append(live[:k])
            que.append(live[k:])
            ret.append([o for o in ops if o not in ok])
        n_ret = sum(map(len, ret))
        if n_ret:
            log.info("budget %.2f ms retires %d (layer, op) pairs that fit in no in-budget architecture",
                     ctx.budget.ms, n_ret)
    cur, que, ret = broadcast_object((cur, que, ret))
    return LoopState(0, 0, 0, Subspaces(cur, que, ret), [[] for _ in cur])


def build_net(ctx: Context, state: LoopState) -> tuple[SuperNet, RoundTrainer]:
    """A fresh supernet, α and optimisers for ``state.round`` (weights drawn from a seed of the round)."""
    cfg, subs = ctx.cfg, [tuple(s) for s in state.subspaces.current]
    target = cfg.latency.target_fraction * ctx.budget.effective_ms
    a0 = cfg.train.alpha_init
    if a0 is None:  # start where the expected latency meets the target: the penalty then steers, not drags
        a0 = ctx.latency.alpha_for_target(subs, target, p_eps=cfg.train.p_eps)
        log.info("round %d: α starts at %.3f (E[latency] = target %.3f ms)", state.round + 1, a0, target)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, INIT, state.round))
        net = SuperNet(ctx.space, subs, proxy=ctx.proxy, protected=[set(p) for p in state.protected],
                       alpha_init=a0, p_eps=cfg.train.p_eps)
    if cfg.proxy.crop_dead_taps:
        full = tuple(tuple(range(len(s))) for s in subs)
        x = torch.zeros(2, ctx.proxy.channels, ctx.proxy.resolution, ctx.proxy.resolution)
        crop_dead_taps(net, lambda: net.eval()(x, full), depthwise_grad=cfg.proxy.depthwise_grad)
    net = net.to(ctx.device, memory_format=ctx.memory_format)
    t = cfg.train
    steps = len(ctx.loader(ctx.data.train, seed=0, train=True))
    steps = min(steps, t.steps_per_epoch) if t.steps_per_epoch else steps
    trainer = RoundTrainer.build(
        net, ctx.latency, target_ms=target, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
        weight_decay=t.weight_decay,
        arch_lr=t.arch_lr, arch_betas=(t.arch_betas[0], t.arch_betas[1]), total_steps=steps * t.epochs_per_round,
        path_prob=t.path_prob, arch_every=t.arch_every, penalty=cfg.latency.penalty, lam=cfg.latency.lam,
        prune_threshold=a0 + t.prune_threshold, device=ctx.device, memory_format=ctx.memory_format,
        path_sampling=t.path_sampling)
    return net, trainer


def save(ctx: Context, state: LoopState, net: SuperNet | None, trainer: RoundTrainer | None, clock: Clock) -> None:
    """The checkpoint, with the time spent so far (a resumed run adds it to its own: ``Clock.resumed``)."""
    if net is not None and not all(torch.isfinite(p).all() for p in net.parameters()):
        raise NanLoss("parameters", state.step)  # never overwrite a good checkpoint with NaNs
    if is_main():
        ctx.run.save_checkpoint({
            "state": state.to_dict(), "net": net.state_dict() if net is not None else None,
            "opt_w": trainer.opt_w.state_dict() if trainer else None,
            "opt_a": trainer.opt_a.state_dict() if trainer else None, "torch_rng": torch.get_rng_state(),
            "spent": clock.spent()})
    barrier()


def train_round(ctx: Context, state: LoopState, net: SuperNet, trainer: RoundTrainer, clock: Clock, *,
                epochs_before: int) -> None:
    """The round's remaining epochs, a checkpoint after each; ``epochs_before``: the search's epochs done when
    this process started (for the time left: this process's pace, round-end scoring included)."""
    cfg, r = ctx.cfg, state.round
    for e in range(state.epoch, cfg.train.epochs_per_round):
        loader = ctx.loader(ctx.data.train, seed=derive_seed(cfg.seed, r, e), train=True)
        held = cycle(lambda i, e=e: ctx.loader(ctx.data.heldout, seed=derive_seed(cfg.seed, ARCH, r, e, i),
                                               train=True))
        rng = np.random.default_rng(derive_seed(cfg.seed, r, e, 0))
        try:
            stats = trainer.epoch(loader, held, rng=rng, step=state.step, max_steps=cfg.train.steps_per_epoch,
                                  arch=e >= cfg.train.arch_warmup_epochs,
                                  desc=f"round {r + 1}/{ctx.rounds} epoch {e + 1}/{cfg.train.epochs_per_round}")
        except NanLoss as exc:
            raise _nan_error(ctx, state, exc) from None
        state.step, state.epoch = stats.pop("step"), e + 1
        state.epochs.append({"epoch": e + 1, **{k: round(float(v), 5) for k, v in stats.items()}})
        left = time_left(time.perf_counter() - clock.wall0, r * cfg.train.epochs_per_round + e + 1, epochs_before,
                         ctx.rounds * cfg.train.epochs_per_round)
        log.info("round %d epoch %d: loss %.3f, train acc %.3f, E[latency] %.2f ms (target %.2f); rounds: %s left",
                 r + 1, e + 1, stats["loss"], stats["acc"], stats["expected_ms"], trainer.target_ms,
                 format_duration(left) if left is not None else "?")
        try:
            save(ctx, state, net, trainer, clock)
        except NanLoss as exc:
            raise _nan_error(ctx, state, exc) from None


def _nan_error(ctx: Context, state: LoopState, exc: NanLoss) -> NseError:
    return NseError(f"{exc.what} loss became NaN/inf at round {state.round + 1}, weight step {exc.step}: stopped; "
                    f"the last good checkpoint ({_ckpt_desc(state)}) is kept in {ctx.run.path} "
                    f"(lower train.lr / train.arch_lr / latency.lam)")


def _ckpt_desc(state: LoopState) -> str:
    return f"round {state.round + 1}, epoch {state.epoch}" if state.epoch else f"start of round {state.round + 1}"


def candidates(ctx: Context, state: LoopState, net: SuperNet) -> tuple[list[Candidate], list[Path], dict]:
    """In-window samples from α, cheaper extras, and last round's Pareto set (drawn on rank 0, broadcast)."""
    if not is_main():
        return broadcast_object(None)
    cfg, eff = ctx.cfg, ctx.budget.effective_ms
    probs, alive = net.probs().detach().cpu().numpy(), net.alive.cpu().numpy()
    nonempty = [not s for s in net.skippable]
    rng = np.random.default_rng(derive_seed(cfg.seed, SAMPLE, state.round))
    prev = []
    for c in state.pareto:
        try:
            prev.append((net.path_of(c.choices), c))
        except ValueError:
            log.warning("last round's Pareto arch uses an op no longer in the subspace; not re-scored")
    seen = {p for p, _ in prev}
    eff = _reachable(ctx, net, eff, state.round)
    lo, hi = cfg.latency.window
    win = sample_in_window(ctx.latency, net.subspaces, probs, alive, nonempty, (lo * eff, hi * eff),
                           cfg.evolve.samples, rng, max_draws=cfg.evolve.max_draws, exclude=seen)
    elo, ehi = cfg.latency.extras_window
    ext = sample_in_window(ctx.latency, net.subspaces, probs, alive, nonempty, (elo * eff, ehi * eff),
                           cfg.evolve.extras, rng, max_draws=cfg.evolve.max_draws,
                           exclude=seen | set(win.paths)) if cfg.evolve.extras else None
    paths = win.paths + (ext.paths if ext else []) + [p for p, _ in prev]
    kinds = ["window"] * len(win.paths) + ["extra"] * len(ext.paths if ext else []) + ["previous"] * len(prev)
    cands = [Candidate(ch := net.choices(p), predict(ctx.space.arch(ch), ctx.table).total_ms, kind=k)
             for p, k in zip(paths, kinds, strict=True)]
    info = {"tilt": win.beta, "draws": win.draws, "window": len(win.paths),
            "extras": len(ext.paths) if ext else 0, "previous": len(prev)}
    log.info("round %d: %d in-window archs (tilt %.3g, %d draws), %d extras, %d from the last front",
             state.round + 1, info["window"], win.beta, win.draws, info["extras"], info["previous"])
    return broadcast_object((cands, paths, info))


def _reachable(ctx: Context, net: SuperNet, eff: float, r: int) -> float:
    """The window's top: the budget, or the subspace's slowest architecture when that is below the window."""
    alive = net.alive.cpu().numpy()
    top = float(ctx.latency.batch_ms([a[None, : len(s)] for a, s in zip(alive, net.subspaces, strict=True)],
                                     net.subspaces)[0])
    if top < ctx.cfg.latency.window[0] * eff:
        log.warning("round %d: the subspace's slowest architecture (%.2f ms) is below the latency window; "
                    "sampling under %.2f ms instead of %.2f ms", r + 1, top, top, eff)
        return top
    return eff


def end_round(ctx: Context, state: LoopState, net: SuperNet, trainer: RoundTrainer) -> LoopState:
    """Score the candidates, take the Pareto front, keep its ops, refill from the queues, and reset."""
    cfg, r = ctx.cfg, state.round
    cands, paths, info = candidates(ctx, state, net)
    if not cands:
        raise NseError(f"round {r + 1}: no architecture could be sampled in the latency window")
    accs = score_paths(
        net, paths, recal=lambda: ctx.loader(ctx.data.train, seed=derive_seed(cfg.seed, RECAL, r), train=True,
                                             distributed=False),
        heldout=lambda: ctx.loader(ctx.data.heldout, seed=0, train=False, distributed=False),
        bn_batches=cfg.evolve.bn_batches, score_batches=cfg.evolve.score_batches, device=ctx.device,
        memory_format=ctx.memory_format, desc=f"round {r + 1}/{ctx.rounds} scoring")
    for c, a in zip(cands, accs, strict=True):
        c.acc = a
    front = [cands[i] for i in pareto_front(cands)]
    keep = kept_ops(front, len(state.subspaces.current))
    nxt = state.subspaces.refill(keep, cfg.evolve.subspace_size)
    in_budget = [c for c in cands if c.ms <= ctx.budget.ms]
    best = max(in_budget, key=lambda c: c.acc) if in_budget else None
    # the round's own gain, paired: its best new arch against the last front re-scored in this supernet on the
    # same images (best_acc across rounds compares differently trained supernets)
    new, old = (max((c.acc for c in in_budget if (c.kind == "previous") == p), default=None) for p in (False, True))
    summary = {"round": r + 1, "candidates": len(cands), **info, "front": len(front),
               "best_acc": best.acc if best else None, "best_ms": best.ms if best else None,
               "best_new_acc": new, "best_previous_acc": old,
               "paired_gain": None if new is None or old is None else new - old,
               "expected_ms": trainer.expected_ms_now(),
               "kept": sum(map(len, keep)), "epochs": state.epochs}
    if is_main():
        ctx.run.write_json(ctx.run.round_json(r), {
            **summary, "budget_ms": ctx.budget.ms, "subspaces": state.subspaces.to_dict(),
            "probs": net.layer_probs(),
            "alpha": [{str(o): round(float(a), 4) for o, a in zip(sub, row, strict=False)}
                      for sub, row in zip(net.subspaces, net.alpha.detach().cpu().tolist(), strict=True)],
            "alive": [[str(o) for o, a in zip(s, al, strict=False) if a]
                                                  for s, al in zip(net.subspaces, net.alive.tolist(), strict=True)],
            "front": [c.to_dict() for c in front], "kept": [[str(o) for o in sorted(k)] for k in keep],
            "next": nxt.to_dict(), "scored": [c.to_dict() for c in cands]})
    log.info("round %d: best in-budget held-out top-1 %s at %s ms; front of %d; %d ops kept", r + 1,
             f"{best.acc:.4f}" if best else "-", f"{best.ms:.2f}" if best else "-", len(front), summary["kept"])
    if summary["paired_gain"] is not None:
        log.info("round %d: best new in-budget arch %.4f vs the last front re-scored %.4f (paired gain %+.4f)",
                 r + 1, new, old, summary["paired_gain"])
    return LoopState(r + 1, 0, 0, nxt, [sorted(k) for k in keep], state.history + [summary], [], front,
                     done=r + 1 >= ctx.rounds, scored=cands)


def resume_state(ctx: Context) -> tuple[LoopState, dict[str, Any] | None]:
    ckpt = ctx.run.load_checkpoint()
    if ckpt is None:
        return initial_state(ctx), None
    with _checkpoint_content(ctx):
        state = LoopState.from_dict(ckpt["state"])
        if ckpt.get("torch_rng") is not None:
            torch.set_rng_state(ckpt["torch_rng"])
    log.info("resuming at %s", _ckpt_desc(state))
    return state, ckpt


@contextmanager
def _checkpoint_content(ctx: Context) -> Iterator[None]:
    """A checkpoint that loads (CRC and types are checked) but lacks or mistypes what a search needs: one line."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
        raise NseError(f"{ctx.run.checkpoint} is not a complete search checkpoint of this run "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def nse_search(ctx: Context) -> Candidate:
    """Run (or continue) the search in ``ctx.run``; returns the final architecture's candidate."""
    start = Clock()  # loading the checkpoint counts: an uninterrupted run never does it, but it is short
    state, ckpt = resume_state(ctx)
    clock = start.resumed(ckpt)
    before = state.round * ctx.cfg.train.epochs_per_round + state.epoch
    while not state.done:
        net, trainer = build_net(ctx, state)
        if ckpt is not None and ckpt.get("net") is not None and state.epoch > 0:
            with _checkpoint_content(ctx):
                net.load_state_dict(ckpt["net"])
                trainer.opt_w.load_state_dict(ckpt["opt_w"])
                trainer.opt_a.load_state_dict(ckpt["opt_a"])
        ckpt = None
        train_round(ctx, state, net, trainer, clock, epochs_before=before)
        state = end_round(ctx, state, net, trainer)
        save(ctx, state, None, None, clock)
        if is_main() and not state.done:  # progress to look at while the next round trains
            plot_rounds(ctx.run, ctx.space, ctx.budget.ms, state.round)
    if is_main():  # also after a resume that found every round done (a kill may have come before the plots)
        plot_rounds(ctx.run, ctx.space, ctx.budget.ms, state.round)
    return finish(ctx, state.history, state.front, state.scored, clock=clock)
