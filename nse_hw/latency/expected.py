"""Expected latency of a network whose layers keep each branch independently with probability p_i.

Pure functions of probabilities and table costs, differentiable in the probabilities.
For a layer with op costs t_i, join costs t_add (one add) and t_scale (the 1/n multiply):

* with the identity as a term (stride-1 same-width layer, may be empty):
      E = sum p_i t_i + t_add * sum p_i + t_scale * (1 - prod(1 - p_i))
* without it (the layer must keep at least one op; paths are resampled until it does), conditioning on
  N >= 1 with Z = P(N >= 1) = 1 - prod(1 - p_i) and P1 = P(N = 1) = sum_i p_i prod_{j != i} (1 - p_j):
      E = sum p_i t_i / Z + t_add * (sum p_i / Z - 1) + t_scale * (Z - P1) / Z
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LayerCosts:
    """Table costs (ms) of one searchable layer: its candidate ops, one add and the mean's multiply."""

    ops: Tensor  # [n_ops]
    add: float
    scale: float
    identity: bool


def exclusive_prod(q: Tensor) -> Tensor:
    """prod_{j != i} q_j along the last dimension, for every i, without dividing: q may be exactly 0 (p = 1,
    which a float32 sigmoid of a logit above ~17 gives; none / q_i was 0/0 there)."""
    ones = torch.ones_like(q[..., :1])
    left = torch.cumprod(torch.cat([ones, q[..., :-1]], -1), -1)
    right = torch.cumprod(torch.cat([ones, q[..., 1:].flip(-1)], -1), -1).flip(-1)
    return left * right


def expected_layer_latency(p: Tensor, costs: LayerCosts) -> Tensor:
    q = 1.0 - p
    none = torch.prod(q)
    op_ms, n_exp = torch.sum(p * costs.ops), torch.sum(p)
    if costs.identity:
        return op_ms + costs.add * n_exp + costs.scale * (1.0 - none)
    z = 1.0 - none
    p_one = torch.sum(p * exclusive_prod(q))
    return op_ms / z + costs.add * (n_exp / z - 1.0) + costs.scale * (z - p_one) / z


def expected_latency(probs: list[Tensor], costs: list[LayerCosts], *, fixed_ms: float) -> Tensor:
    """Expected whole-network latency: the fixed units (stem, fixed layers, head, classifier) plus every layer."""
    total = torch.as_tensor(fixed_ms, dtype=torch.float32)
    for p, c in zip(probs, costs, strict=True):
        total = total + expected_layer_latency(p, c)
    return total


def latency_penalty(expected_ms: Tensor, target_ms: float, *, kind: str = "squared") -> Tensor:
    """(E[lat] - target)^2 in (relative units), or a hinge that only punishes excess."""
    rel = expected_ms / target_ms - 1.0
    if kind == "squared":
        return rel**2
    if kind == "hinge":
        return torch.clamp(rel, min=0.0) ** 2
    raise ValueError(f"unknown penalty kind {kind!r} (squared or hinge)")
