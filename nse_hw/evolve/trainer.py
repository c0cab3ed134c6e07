"""One round of supernet training: weight steps on random paths, α steps on the held-out split.

Weight-step paths switch every live op on with ``path_prob`` ('uniform', the paper), or with those
probabilities tilted by one β (recomputed when pruning changes the live set) so that the paths' expected latency
is the round's target ('budget'): the supernet then trains paths as heavy as the in-window archs it will rank.

Data-parallel under torchrun: every step's path is drawn on rank 0 and broadcast, each rank reads its shard, and
gradients are averaged with one all-reduce per step (what DDP does; the DDP wrapper itself is not used because
each step's path changes which parameters take part).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nse_hw.evolve.sampling import find_tilt
from nse_hw.latency import latency_penalty
from nse_hw.progress import progress_bar
from nse_hw.supernet import CostMatrix, Path, SpaceLatency, SuperNet, sample_path, sample_two_path
from nse_hw.train.dist import all_reduce_sum, broadcast_object, is_distributed, is_main, world_size

log = logging.getLogger(__name__)


class NanLoss(Exception):
    def __init__(self, what: str, step: int) -> None:
        super().__init__(f"{what} loss is not finite at step {step}")
        self.what, self.step = what, step


@dataclass
class RoundTrainer:
    """Optimisers, latency costs and hyperparameters of one round (built fresh each round)."""

    net: SuperNet
    opt_w: torch.optim.Optimizer
    opt_a: torch.optim.Optimizer
    latency: SpaceLatency
    costs: CostMatrix
    target_ms: float
    lr: float
    total_steps: int
    path_prob: float
    arch_every: int
    penalty: str
    lam: float
    prune_threshold: float
    device: torch.device
    memory_format: torch.memory_format = torch.contiguous_format
    path_sampling: str = "uniform"
    _tilted: tuple[bytes, np.ndarray] | None = None  # (live set, its tilted path probabilities)

    @classmethod
    def build(cls, net: SuperNet, latency: SpaceLatency, *, target_ms: float, optimizer: str, lr: float,
              momentum: float,
              weight_decay: float, arch_lr: float, arch_betas: tuple[float, float], total_steps: int,
              path_prob: float, arch_every: int, penalty: str, lam: float, prune_threshold: float,
              device: torch.device, memory_format: torch.memory_format,
              path_sampling: str = "uniform") -> RoundTrainer:
        opt_w = weight_optimizer(net.weight_parameters(), optimizer, lr=lr, momentum=momentum,
                                 weight_decay=weight_decay)
        opt_a = torch.optim.Adam(net.arch_parameters(), lr=arch_lr, betas=arch_betas)
        costs = latency.cost_matrix(net.subspaces, net.alpha.shape[1]).to(device)
        return cls(net, opt_w, opt_a, latency, costs, target_ms, lr, max(1, total_steps), path_prob, arch_every,
                   penalty, lam, prune_threshold, device, memory_format, path_sampling)

    def expected_ms(self) -> Tensor:
        return self.latency.expected_ms(self.net.probs(), self.costs)

    def expected_ms_now(self) -> float:
        with torch.no_grad():
            return float(self.expected_ms())

    def _set_lr(self, step: int) -> None:
        lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
        for g in self.opt_w.param_groups:
            g["lr"] = lr

    def path_probs(self) -> np.ndarray:
        """Per (layer, op) probability of being on in a weight-step path (0 for dead ops)."""
        alive = self.net.alive.cpu().numpy()
        base = np.where(alive, self.path_prob, 0.0)
        if self.path_sampling == "uniform":
            return base
        if self._tilted is None or self._tilted[0] != alive.tobytes():
            t = self.target_ms
            self._tilted = (alive.tobytes(), find_tilt(self.latency, self.net.subspaces, base, alive, (t, t))[1])
        return self._tilted[1]

    def weight_path(self, rng: np.random.Generator) -> Path:
        # 'uniform' draws exactly what uniform_path(p_on=path_prob) drew: the same probabilities on live ops
        return sample_path(self.path_probs(), self.net.alive.cpu().numpy(), [not s for s in self.net.skippable], rng)

    def weight_step(self, x: Tensor, y: Tensor, rng: np.random.Generator, step: int) -> tuple[float, float]:
        net = self.net
        path = broadcast_object(self.weight_path(rng) if is_main() else None)
        self._set_lr(step)
        net.train()
        logits = net(x, path)
        loss = F.cross_entropy(logits, y)
        if _any_rank(not torch.isfinite(loss), self.device):
            raise NanLoss("weight", step)
        self.opt_w.zero_grad(set_to_none=True)
        loss.backward()
        _average_grads(net.weight_parameters())
        self.opt_w.step()
        return loss.item(), (logits.argmax(1) == y).float().mean().item()

    def arch_step(self, x: Tensor, y: Tensor, rng: np.random.Generator, step: int,
                  pruned_log: list[str] | None = None) -> tuple[float, float]:
        """Two-path α step: CE on a held-out batch + λ·penalty(E[latency]); then prune low logits (each pruned
        (layer, op) is appended to ``pruned_log``, which the epoch logs in one line)."""
        net = self.net
        probs = net.probs().detach().cpu().numpy()
        tp = broadcast_object(sample_two_path(probs, net.alive.cpu().numpy(), [not s for s in net.skippable], rng)
                              if is_main() else None)
        net.train()
        ce = F.cross_entropy(net(x, tp), y)
        exp_ms = self.expected_ms()  # the whole network's, differentiable in α
        loss = ce + self.lam * latency_penalty(exp_ms, self.target_ms, kind=self.penalty)
        if _any_rank(not torch.isfinite(loss), self.device):
            raise NanLoss("architecture", step)
        (grad,) = torch.autograd.grad(loss, [net.alpha])  # weights are not updated by α steps
        net.alpha.grad = grad
        _average_grads([net.alpha])
        self.opt_a.step()
        net.alpha.grad = None
        pruned = [f"layer {j}: {op}" for j, op in net.prune(self.prune_threshold)]
        if pruned:
            log.debug("step %d: pruned %s", step, ", ".join(pruned))
            if pruned_log is not None:
                pruned_log.extend(pruned)
        return ce.item(), exp_ms.item()

    def _to(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x.to(self.device, memory_format=self.memory_format), y.to(self.device)

    def epoch(self, loader: torch.utils.data.DataLoader, heldout: Iterator[tuple[Tensor, Tensor]], *,
              rng: np.random.Generator, step: int, max_steps: int | None, arch: bool, desc: str) -> dict[str, float]:
        """One pass over ``loader`` (or ``max_steps``); returns the epoch's mean stats and the step reached."""
        n = len(loader) if max_steps is None else min(len(loader), max_steps)
        sums = {"loss": 0.0, "acc": 0.0, "arch_ce": 0.0, "exp_ms": self.expected_ms_now()}
        n_arch, pruned = 0, []
        with progress_bar(total=n, desc=desc, disable=not is_main(), leave=False) as bar:
            for i, (x, y) in enumerate(loader):
                if i >= n:
                    break
                loss, acc = self.weight_step(*self._to(x, y), rng, step)
                sums["loss"] += loss
                sums["acc"] += acc
                step += 1
                if arch and step % self.arch_every == 0:
                    ce, sums["exp_ms"] = self.arch_step(*self._to(*next(heldout)), rng, step, pruned)
                    sums["arch_ce"] += ce
                    n_arch += 1
                bar.set_postfix(loss=f"{sums['loss'] / (i + 1):.3f}", acc=f"{sums['acc'] / (i + 1):.3f}",
                                E_ms=f"{sums['exp_ms']:.2f}", refresh=False)  # shown at the bar's next redraw
                bar.update(1)
        if pruned:  # one line per epoch, not one per α step (the terminal shows the log between the bars)
            log.info("pruned %d (layer, op) pairs this epoch: %s", len(pruned), ", ".join(pruned))
        return {"loss": sums["loss"] / max(n, 1), "acc": sums["acc"] / max(n, 1),
                "arch_ce": sums["arch_ce"] / max(n_arch, 1), "expected_ms": self.expected_ms_now(),
                "steps": n, "step": step, "pruned": len(pruned)}


def weight_optimizer(params: list[torch.nn.Parameter], kind: str, *, lr: float, momentum: float,
                     weight_decay: float) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)


def _any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop together instead of deadlocking)."""
    if not is_distributed():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=device)) > 0)


def _average_grads(params: list[torch.nn.Parameter]) -> None:
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = all_reduce_sum(torch.cat([g.reshape(-1) for g in grads])) / world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()

