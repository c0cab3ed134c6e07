"""End-of-round architecture sampling: archs drawn from the α-Bernoulli whose latency lies in a window.

Early in a round (or with a small penalty weight) the α distribution can sit far from the window, where plain
rejection would almost never accept. The sampler then *tilts* it: logits α - β t / t̄ (t: each op's table
cost at that layer), with β found by bisection so that the tilted expected latency is the window's centre; the
relative preferences of α are kept, and β is logged. Archs are drawn in vectorised batches, their exact
latencies computed from the table (the same sum as ``predict``), and the in-window ones kept (deduplicated).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from nse_hw.space import Op
from nse_hw.supernet import Path, SpaceLatency
from nse_hw.supernet.costs import CostMatrix
from nse_hw.supernet.paths import draw_nonempty

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampled:
    paths: list[Path]
    ms: list[float]
    beta: float
    draws: int


def _tilted(probs: np.ndarray, alive: np.ndarray, cost: np.ndarray, beta: float) -> np.ndarray:
    p = np.clip(probs, 1e-9, 1 - 1e-9)
    logit = np.log(p) - np.log1p(-p) - beta * cost
    return np.where(alive, 1.0 / (1.0 + np.exp(-logit)), 0.0)


def _expected(model: SpaceLatency, costs: CostMatrix, p: np.ndarray) -> float:
    # float64: strong tilts push probabilities within 1e-8 of 0 or 1, which float32 rounds to exactly 0 or 1
    t = torch.as_tensor(p, dtype=torch.float64)
    e = float(model.expected_ms(t, costs))
    if not math.isfinite(e):  # every p of a non-empty layer below ~1e-16: 1 - prod(1 - p) is exactly 0
        e = float(model.expected_ms(t, costs, stable=True))
    if not math.isfinite(e):  # a NaN compared as "below the target" and steered the bisection the wrong way
        raise FloatingPointError(f"expected latency of the tilted distribution is {e}")
    return e


def find_tilt(model: SpaceLatency, subspaces: list[tuple[Op, ...]], probs: np.ndarray, alive: np.ndarray,
              window_ms: tuple[float, float], *, bound: float = 40.0) -> tuple[float, np.ndarray]:
    """β (0 when the untilted expectation is already in the window) and the tilted probabilities."""
    costs = model.cost_matrix(subspaces, probs.shape[1])  # built once: only the tilt changes below
    cost = costs.ops.double().numpy()
    live = cost[alive]
    cost = cost / (live.mean() if live.size and live.mean() > 0 else 1.0)
    lo, hi = window_ms
    p0 = _tilted(probs, alive, cost, 0.0)
    if lo <= _expected(model, costs, p0) <= hi:
        return 0.0, p0
    target, a, b = (lo + hi) / 2, -bound, bound  # E decreases with β
    for _ in range(50):
        mid = (a + b) / 2
        if _expected(model, costs, _tilted(probs, alive, cost, mid)) > target:
            a = mid
        else:
            b = mid
    beta = (a + b) / 2
    return beta, _tilted(probs, alive, cost, beta)


REDRAWS = 10_000  # rejection rounds for the empty rows of a non-empty layer before they are drawn exactly


def draw_bits(p: np.ndarray, sizes: list[int], nonempty: list[bool], n: int,
              rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` draws per layer of independent Bernoulli bits; rows of non-empty layers are conditioned on holding at
    least one op: redrawn (up to ``REDRAWS`` rounds), then drawn exactly from that condition (``draw_nonempty``).
    A strong tilt can leave every op of a layer with p ~ 1e-17, where redrawing alone would never end."""
    bits = []
    for j, (k, ne) in enumerate(zip(sizes, nonempty, strict=True)):
        b = rng.random((n, k)) < p[j, :k]
        if ne:
            if not (p[j, :k] > 0).any():
                raise ValueError(f"layer {j} must not be empty but has no live op")
            empty = ~b.any(1)
            for _ in range(REDRAWS):
                if not empty.any():
                    break
                b[empty] = rng.random((int(empty.sum()), k)) < p[j, :k]
                empty = ~b.any(1)
            if empty.any():
                b[empty] = draw_nonempty(p[j, :k], int(empty.sum()), rng)
        bits.append(b)
    return bits


def sample_in_window(model: SpaceLatency, subspaces: list[tuple[Op, ...]], probs: np.ndarray, alive: np.ndarray,
                     nonempty: list[bool], window_ms: tuple[float, float], n: int, rng: np.random.Generator, *,
                     max_draws: int, batch: int = 4096, exclude: set[Path] | None = None) -> Sampled:
    """Up to ``n`` distinct archs (as paths) drawn from the (tilted) α-Bernoulli with latency in ``window_ms``."""
    beta, p = find_tilt(model, subspaces, probs, alive, window_ms)
    sizes = [len(s) for s in subspaces]
    seen, paths, ms, draws = set(exclude or ()), [], [], 0
    while len(paths) < n and draws < max_draws:
        bits = draw_bits(p, sizes, nonempty, batch, rng)
        lat = model.batch_ms(bits, subspaces)
        draws += batch
        for r in np.flatnonzero((lat >= window_ms[0]) & (lat <= window_ms[1])):
            path = tuple(tuple(int(i) for i in np.flatnonzero(b[r])) for b in bits)
            if path not in seen:
                seen.add(path)
                paths.append(path)
                ms.append(float(lat[r]))
                if len(paths) == n:
                    break
    if len(paths) < n:
        log.warning("found %d of %d distinct architectures in [%.2f, %.2f] ms after %d draws (tilt %.3g)",
                    len(paths), n, window_ms[0], window_ms[1], draws, beta)
    return Sampled(paths, ms, beta, draws)
