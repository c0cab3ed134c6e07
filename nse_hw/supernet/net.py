"""The multi-branch supernet: per searchable layer, the current subspace's ops as branches, α per (layer, op).

Each op of a layer is on independently with probability p = eps + (1 - 2 eps) sigmoid(α) (kept away from 0 and 1
without killing gradients). A layer's output is the mean of its active branches, the identity counting as one
more term in stride-1 same-width layers (the rule of :class:`nse_hw.blocks.MultiBranch`, so a path computes
exactly what its architecture trained alone would).

The supernet trains the proxy task's view of the space (``adapt_arch``: same ops and strides, the proxy's input,
classes and a width multiplier) and exports the DEPLOYMENT architecture. There is no hidden state: what runs is
the ``path`` argument of :meth:`SuperNet.forward`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from nse_hw.blocks import Classifier, Head, MultiBranch, build_op, conv
from nse_hw.space import Arch, Layer, Op, SearchSpace, adapt_arch
from nse_hw.supernet.paths import Path, TwoPath


@dataclass(frozen=True)
class Proxy:
    """How the proxy task sees the space: input resolution and channels, classes, width multiplier."""

    resolution: int
    channels: int
    classes: int
    width_mult: float = 1.0


def _mean(terms: list[Tensor]) -> Tensor:
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out * (1.0 / len(terms)) if len(terms) > 1 else out


class SuperLayer(nn.Module):
    """One searchable layer: a branch per subspace op (weights shared by every path that uses it)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, ops: tuple[Op, ...]) -> None:
        super().__init__()
        self.identity = stride == 1 and in_chs == out_chs
        self.branches = nn.ModuleList(build_op(op, in_chs, out_chs, stride) for op in ops)

    def forward(self, x: Tensor, active: tuple[int, ...]) -> Tensor:
        terms = [self.branches[i](x) for i in active] + ([x] if self.identity else [])
        if not terms:
            raise ValueError("empty path in a layer that changes stride or width")
        return _mean(terms)

    def forward_pair(self, x: Tensor, pair: tuple[tuple[int, ...], tuple[int, ...]], gate: Tensor) -> Tensor:
        """``gate[0] * layer(pair[0]) + gate[1] * layer(pair[1])``, each branch computed once."""
        outs = {i: self.branches[i](x) for i in sorted(set(pair[0]) | set(pair[1]))}
        ys = [_mean([outs[i] for i in s] + ([x] if self.identity else [])) for s in pair]
        return gate[0] * ys[0] + gate[1] * ys[1]


def _zero_last_bn(layers: nn.ModuleList) -> None:
    """Start every branch of a layer with an identity term at zero (its last BN's scale), so the deep supernet
    starts close to its skeleton of shape-changing layers: without it, random per-layer paths through this
    22-layer net barely train in a laptop-sized round (see benchmarks/search/RESULTS-search.md)."""
    for layer in layers:
        if isinstance(layer, SuperLayer) and layer.identity:
            for branch in layer.branches:
                bns = [m for m in branch.modules() if isinstance(m, nn.BatchNorm2d)]
                nn.init.zeros_(bns[-1].weight)


class SuperNet(nn.Module):
    """``zero_init_last_bn``: see :func:`_zero_last_bn` (a standard trick; the tests turn it off to compare a path
    with its standalone network at equal weights)."""

    def __init__(self, space: SearchSpace, subspaces: list[tuple[Op, ...]], *, proxy: Proxy,
                 protected: list[set[Op]] | None = None, alpha_init: float = 0.0, p_eps: float = 1e-3,
                 zero_init_last_bn: bool = True) -> None:
        super().__init__()
        if len(subspaces) != len(space.searchable):
            raise ValueError(f"need one subspace per searchable layer ({len(space.searchable)}), got {len(subspaces)}")
        self.space, self.subspaces, self.proxy, self.p_eps = space, [tuple(s) for s in subspaces], proxy, p_eps
        self.skippable = [space.positions[j].skippable for j in space.searchable]
        placeholder = [() if sk else (space.pool[0],) for sk in self.skippable]
        skel = adapt_arch(space.arch(placeholder), resolution=proxy.resolution, channels=proxy.channels,
                          classes=proxy.classes, width_mult=proxy.width_mult)
        self.stem = conv(proxy.channels, skel.stem_out, skel.stem_stride, k=skel.stem.k)
        chs, layers, it = skel.stem_out, [], iter(self.subspaces)
        for pos, spec in zip(space.positions, skel.layers, strict=True):
            layers.append(SuperLayer(chs, spec.out, spec.stride, next(it)) if pos.searchable else
                          MultiBranch(chs, spec))
            chs = spec.out
        self.layers = nn.ModuleList(layers)
        if zero_init_last_bn:
            _zero_last_bn(self.layers)
        self.head, self.classifier = Head(chs, skel.head_out), Classifier(skel.head_out, proxy.classes)
        width = max(1, max(len(s) for s in self.subspaces))
        alive = torch.zeros(len(self.subspaces), width, dtype=torch.bool)
        prot = torch.zeros_like(alive)
        for j, sub in enumerate(self.subspaces):
            alive[j, : len(sub)] = True
            for i, op in enumerate(sub):
                prot[j, i] = bool(protected and op in protected[j])
        self.alpha = nn.Parameter(torch.full((len(self.subspaces), width), float(alpha_init)))
        self.register_buffer("alive", alive)  # False: padding, or pruned during this round
        self.register_buffer("protected", prot)  # kept from the last round: never pruned

    # --- distributions -------------------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def probs(self) -> Tensor:
        """[L, K] Bernoulli probabilities (differentiable in α); 0 for pruned ops and padding."""
        p = self.p_eps + (1.0 - 2.0 * self.p_eps) * torch.sigmoid(self.alpha)
        return torch.where(self.alive, p, torch.zeros_like(p))

    def layer_probs(self) -> list[dict[str, float]]:
        """Per layer, ``{op: p}`` of its live ops (JSON-friendly)."""
        p = self.probs().detach().cpu().numpy()
        alive = self.alive.cpu().numpy()
        return [{str(op): round(float(p[j, i]), 4) for i, op in enumerate(sub) if alive[j, i]}
                for j, sub in enumerate(self.subspaces)]

    def prune(self, threshold: float, *, keep_fixed: int = 2) -> list[tuple[int, Op]]:
        """Retire ops whose α fell below ``threshold``, except protected ones and, in a layer that cannot be
        skipped (it changes stride or width), its ``keep_fixed`` best live ops: the official NSE code keeps two
        there, so such a layer never collapses to one op in the middle of a round."""
        pruned = []
        with torch.no_grad():
            low = (self.alpha < threshold) & self.alive & ~self.protected
            for j in torch.nonzero(low.any(1)).flatten().tolist():
                cand = torch.nonzero(low[j]).flatten().tolist()
                short = keep_fixed - (int(self.alive[j].sum()) - len(cand))  # survivors below the floor
                if not self.skippable[j] and short > 0:  # spare the best candidates (ties: the first)
                    cand = sorted(sorted(cand, key=lambda i: -float(self.alpha[j, i]))[short:])
                for i in cand:
                    self.alive[j, i] = False
                    pruned.append((j, self.subspaces[j][i]))
        return pruned

    # --- forward -------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, path: Path | TwoPath) -> Tensor:
        """Logits of ``path`` (a weight-step/scoring path), or of a two-path architecture step whose gates are
        straight-through: the chosen subset is forwarded, and α gets gradient through both subsets'
        renormalised probabilities (ProxylessNAS's two-path estimator)."""
        gates = self._gates(path) if isinstance(path, TwoPath) else None
        x, j = self.stem(x), 0
        for layer in self.layers:
            if not isinstance(layer, SuperLayer):
                x = layer(x)
                continue
            x = layer(x, path[j]) if gates is None else layer.forward_pair(x, path.pairs[j], gates[j])
            j += 1
        return self.classifier(self.head(x))

    def _gates(self, tp: TwoPath) -> list[Tensor]:
        p = self.probs()
        logp, log1m = torch.log(p.clamp_min(1e-12)), torch.log1p(-p)
        gates = []
        for j, (pair, c) in enumerate(zip(tp.pairs, tp.choice, strict=True)):
            lps = []
            for s in pair:
                on = torch.zeros_like(p[j], dtype=torch.bool)
                on[list(s)] = True
                lps.append(torch.where(on, logp[j], log1m[j])[self.alive[j]].sum())
            pi = torch.softmax(torch.stack(lps), 0)
            gates.append(nn.functional.one_hot(torch.tensor(c), 2).to(pi) + pi - pi.detach())
        return gates

    # --- architectures -------------------------------------------------------------------------------------
    def choices(self, path: Path) -> list[Layer]:
        return [tuple(sub[i] for i in sorted(s)) for sub, s in zip(self.subspaces, path, strict=True)]

    def path_of(self, choices: list[Layer]) -> Path:
        """Inverse of :meth:`choices` (every op must be in the layer's subspace)."""
        return tuple(tuple(sorted(sub.index(o) for o in c)) for sub, c in zip(self.subspaces, choices, strict=True))

    def export(self, path: Path | None = None, **meta: object) -> Arch:
        """The DEPLOYMENT arch of ``path``, or of the most likely one (ops with p >= 0.5; a layer that cannot be
        skipped keeps at least its most likely op)."""
        if path is None:
            p = self.probs().detach().cpu().numpy()
            alive = self.alive.cpu().numpy()
            chosen = []
            for j, sk in enumerate(self.skippable):
                on = tuple(int(i) for i in np.flatnonzero((p[j] >= 0.5) & alive[j]))
                chosen.append(on if on or sk else (int(np.argmax(np.where(alive[j], p[j], -1.0))),))
            path = tuple(chosen)
        return self.space.arch(self.choices(path), **meta)
