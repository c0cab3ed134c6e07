"""A space's latency at its DEPLOYMENT shapes, from a table: what the search needs of it.

* per searchable layer, every pool op's cost and the join costs (one add, the mean's 1/n multiply);
* the fixed part of the network (stem, fixed layers, head, classifier);
* exact arch latencies (the same sum as :func:`nse_hw.latency.predict`, vectorised for samplers);
* the differentiable expected latency of a supernet's Bernoulli distribution;
* the fastest and slowest architectures the space allows, and the ops no in-budget architecture can use.

Every figure returned in ms is calibrated with the table's affine calibration (if it has one); the calibration
is affine, so the expected calibrated latency is the calibration of the expected LUT sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from nse_hw.latency import (
    LatencyTable,
    LayerCosts,
    arch_components,
    exclusive_prod,
    expected_latency,
    join_counts,
    join_key,
    op_key,
    out_shape,
    space_keys,
)
from nse_hw.space import Layer, Op, SearchSpace

Ms = TypeVar("Ms", float, Tensor)


@dataclass(frozen=True)
class CostMatrix:
    """Per-layer costs of the current subspaces as tensors: ops [L, K] (zero-padded), add [L], scale [L],
    identity [L] (bool: the identity is a term and the layer may be empty)."""

    ops: Tensor
    add: Tensor
    scale: Tensor
    identity: Tensor

    def to(self, device: torch.device) -> CostMatrix:
        return CostMatrix(self.ops.to(device), self.add.to(device), self.scale.to(device), self.identity.to(device))


@dataclass(frozen=True)
class LayerTable:
    """Deployment costs (LUT ms) of one searchable layer."""

    ops: dict[Op, float]
    add: float
    scale: float
    identity: bool  # the identity is a term of the mean (and the layer may be empty)

    def ms(self, ops: Layer) -> float:
        adds, scales = join_counts(len(ops), self.identity)
        return sum(self.ops[o] for o in ops) + adds * self.add + scales * self.scale

    def cheapest(self) -> float:
        return 0.0 if self.identity else min(self.ops.values())

    def slowest(self) -> float:
        return self.ms(tuple(self.ops))


class SpaceLatency:
    """Latency model of ``space`` on ``table`` (checks up front that the table has every key the space needs)."""

    def __init__(self, space: SearchSpace, table: LatencyTable) -> None:
        in_ops = table.adds_in_ops
        table.require(space_keys(space, adds_in_ops=in_ops))
        self.space, self.table = space, table
        cal = table.meta.get("calibration") or {}
        self.slope, self.intercept = float(cal.get("slope", 1.0)), float(cal.get("intercept_ms", 0.0))
        if self.slope <= 0:
            raise ValueError(f"latency table {table.name} has a non-positive calibration slope {self.slope}")
        base = space.arch([() if p.skippable else (space.pool[0],) for p in space.positions if p.searchable])
        shapes = base.layer_inputs()
        fixed = table.ms(op_key(space.stem, space.input, space.stem_out, space.stem_stride))
        self.layers: list[LayerTable] = []
        for pos, shape in zip(space.positions, shapes, strict=False):
            identity = pos.stride == 1 and shape[2] == pos.out
            oshape = out_shape(shape, pos.out, pos.stride)
            ops = pos.fixed if not pos.searchable else space.pool
            costs = {op: table.ms(op_key(op, shape, pos.out, pos.stride)) for op in ops}
            adds, scales = join_counts(2 if pos.searchable else len(ops), identity, adds_in_ops=in_ops)
            # an in-op table's identity layers need no add key: their add costs 0 here (its ops carry it)
            add = table.ms(join_key("add", oshape)) if adds else 0.0
            scale = table.ms(join_key("scale", oshape)) if scales else 0.0
            lt = LayerTable(costs, add, scale, identity)
            if not pos.searchable:
                fixed += lt.ms(pos.fixed)
            elif identity != pos.skippable:
                raise ValueError(f"space {space.name}: a same-width stride-1 layer that may not be skipped is not "
                                 f"supported by the expected-latency model")
            else:
                self.layers.append(lt)
        tail = [kn for c in arch_components(base) if c.name in ("head", "classifier") for kn in c.keys]
        fixed += sum(n * table.ms(k) for k, n in tail)
        self.fixed_ms = fixed

    def calibrated(self, lut_ms: Ms) -> Ms:
        """The table's whole-network calibration, for a float or a tensor of LUT sums."""
        return self.slope * lut_ms + self.intercept

    def arch_ms(self, choices: list[Layer] | tuple[Layer, ...]) -> float:
        """Calibrated latency of the arch with ``choices`` in the searchable layers (== predict(arch).total_ms)."""
        return self.calibrated(self.fixed_ms + sum(lt.ms(c) for lt, c in zip(self.layers, choices, strict=True)))

    def min_ms(self) -> float:
        return self.calibrated(self.fixed_ms + sum(lt.cheapest() for lt in self.layers))

    def max_ms(self) -> float:
        return self.calibrated(self.fixed_ms + sum(lt.slowest() for lt in self.layers))

    def feasible_ops(self, budget_ms: float) -> list[set[Op]]:
        """Per layer, the pool ops that appear in at least one arch within ``budget_ms`` (the cheapest choices
        everywhere else, the op alone in its layer)."""
        floor = self.fixed_ms + sum(lt.cheapest() for lt in self.layers)
        out = []
        for lt in self.layers:
            rest = floor - lt.cheapest()
            out.append({op for op in lt.ops if self.calibrated(rest + lt.ms((op,))) <= budget_ms})
        return out

    def layer_costs(self, subspaces: list[tuple[Op, ...]], width: int) -> list[LayerCosts]:
        """The expected-latency costs of each layer's subspace, zero-padded to ``width`` ops."""
        out = []
        for lt, sub in zip(self.layers, subspaces, strict=True):
            ops = [lt.ops[o] for o in sub] + [0.0] * (width - len(sub))
            out.append(LayerCosts(torch.tensor(ops, dtype=torch.float32), lt.add, lt.scale, lt.identity))
        return out

    def cost_matrix(self, subspaces: list[tuple[Op, ...]], width: int) -> CostMatrix:
        c = self.layer_costs(subspaces, width)
        return CostMatrix(torch.stack([x.ops for x in c]), torch.tensor([x.add for x in c]),
                          torch.tensor([x.scale for x in c]), torch.tensor([x.identity for x in c]))

    def expected_ms(self, probs: Tensor, costs: CostMatrix, *, stable: bool = False) -> Tensor:
        """Calibrated expected latency (differentiable) of per-layer Bernoulli probabilities ``probs`` [L, K].

        :func:`nse_hw.latency.expected_latency`'s formulas, all layers at once (a few tensor ops instead of a
        few per layer: the penalty stays a negligible part of an architecture step). ``stable``: P(N >= 1) of a
        layer that may not be empty as -expm1(sum log1p(-p)) instead of 1 - prod(1 - p), which is exactly 0 (and
        the layer's conditional expectation 0/0) once every p is below ~1e-16, as a strong tilt makes them; the
        sampler falls back to it where the plain form is not finite (the plain form is kept otherwise, so
        searches that never met the case stay bit for bit what they were).
        """
        p = probs
        q = 1.0 - p
        none = torch.prod(q, 1)
        op_ms, n = torch.sum(p * costs.ops, 1), torch.sum(p, 1)
        at_least_one = -torch.expm1(torch.sum(torch.log1p(-p), 1)) if stable else 1.0 - none
        z = torch.where(costs.identity, torch.ones_like(none), at_least_one)  # non-empty layers: P(N >= 1)
        p_one = torch.sum(p * exclusive_prod(q), 1)
        with_id = op_ms + costs.add * n + costs.scale * (1.0 - none)
        no_id = op_ms / z + costs.add * (n / z - 1.0) + costs.scale * (z - p_one) / z
        return self.calibrated(self.fixed_ms + torch.where(costs.identity, with_id, no_id).sum())

    def expected_ms_reference(self, probs: Tensor, costs: list[LayerCosts]) -> Tensor:
        """The same through nse_hw.latency.expected_latency, layer by layer (for tests)."""
        return self.calibrated(expected_latency(list(probs.unbind(0)), costs, fixed_ms=self.fixed_ms))

    def alpha_for_target(self, subspaces: list[tuple[Op, ...]], target_ms: float, *, p_eps: float,
                         bound: float = 8.0) -> float:
        """The logit c such that α = c for every subspace op gives E[latency] = ``target_ms`` (clamped to
        [-bound, bound] when the target is out of reach)."""
        width = max(1, max(len(s) for s in subspaces))
        alive = torch.tensor([[i < len(s) for i in range(width)] for s in subspaces])
        costs = self.cost_matrix(subspaces, width)

        def expected(c: float) -> float:
            p = p_eps + (1 - 2 * p_eps) * torch.sigmoid(torch.tensor(c))
            return float(self.expected_ms(torch.where(alive, p, 0.0), costs))

        lo, hi = -bound, bound  # E increases with c
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expected(mid) < target_ms else (lo, mid)
        return (lo + hi) / 2

    def batch_ms(self, bits: list[np.ndarray], subspaces: list[tuple[Op, ...]]) -> np.ndarray:
        """Calibrated latencies of N archs given as per-layer on/off matrices ``bits[l]`` [N, len(subspace l)]."""
        total = np.full(bits[0].shape[0], self.fixed_ms)
        for lt, b, sub in zip(self.layers, bits, subspaces, strict=True):
            t = np.array([lt.ops[o] for o in sub])
            n = b.sum(1) + int(lt.identity)
            total += b @ t + np.maximum(n - 1, 0) * lt.add + (n > 1) * lt.scale
        return self.slope * total + self.intercept


