"""Paths through a supernet: which subspace ops of each searchable layer are on.

A :data:`Path` holds, per searchable layer, the indices (into that layer's subspace) of the ops that are on; an
empty tuple is `skip`. A :class:`TwoPath` is what an architecture step forwards: two distinct subsets per layer
and which of the two is forwarded. Paths are plain data, drawn here from explicit ``np.random.Generator`` s and
passed to ``SuperNet.forward`` as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Path = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class TwoPath:
    pairs: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    choice: tuple[int, ...]  # 0 or 1 per layer: the subset that is forwarded


def _draw(p: np.ndarray, alive: np.ndarray, nonempty: bool, rng: np.random.Generator) -> tuple[int, ...]:
    """One subset from independent Bernoulli(p) over the alive ops, redrawn while a non-empty layer is empty."""
    idx = np.flatnonzero(alive)
    if nonempty and idx.size == 0:
        raise ValueError("a layer that cannot be skipped has no live op")
    for _ in range(64):
        on = idx[rng.random(idx.size) < p[idx]]
        if on.size or not nonempty:
            return tuple(int(i) for i in on)
    # P(empty) near 1 (strongly tilted p): draw the conditional exactly
    return tuple(int(i) for i in idx[draw_nonempty(p[idx], 1, rng)[0]])


def draw_nonempty(p: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` rows of independent Bernoulli(``p``) bits conditioned on at least one being on, drawn exactly: while
    none is on yet, op i is the first on with probability p_i / P(any of i.. on); the ops after it are then free.
    Exact for tiny p too, where redrawing until one is on would never end. Every p 0: the first op."""
    q = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    tail = -np.expm1(np.cumsum(np.log1p(-q)[::-1])[::-1])  # P(any of i.. on), exact for tiny p too
    out, pending = np.zeros((m, q.size), dtype=bool), np.arange(m)
    for i in range(q.size):
        if tail[i] > 0 and pending.size:  # row by row this draws what one row alone would (m=1: the same bits)
            first = pending[rng.random(pending.size) < q[i] / tail[i]]
            out[first, i] = True
            out[first, i + 1:] = rng.random((first.size, q.size - i - 1)) < q[i + 1:]
            pending = np.setdiff1d(pending, first, assume_unique=True)
    out[pending, int(np.argmax(q))] = True  # rounding left a row without an op: the likeliest one
    return out


def sample_path(probs: np.ndarray, alive: np.ndarray, nonempty: list[bool], rng: np.random.Generator) -> Path:
    """A path with op i of layer l on with probability ``probs[l, i]`` (layers in ``nonempty`` resample)."""
    return tuple(_draw(probs[j], alive[j], nonempty[j], rng) for j in range(len(nonempty)))


def uniform_path(alive: np.ndarray, nonempty: list[bool], rng: np.random.Generator, *, p_on: float = 0.5) -> Path:
    """A weight-step path: every live subspace op on with probability ``p_on``."""
    return sample_path(np.full(alive.shape, p_on), alive, nonempty, rng)


def _other(first: tuple[int, ...], p: np.ndarray, alive: np.ndarray, nonempty: bool,
           rng: np.random.Generator, tries: int) -> tuple[int, ...]:
    for _ in range(tries):
        s = _draw(p, alive, nonempty, rng)
        if s != first:
            return s
    # p is near-deterministic: flip one live op (keeping the layer non-empty where it must be)
    idx = [int(i) for i in np.flatnonzero(alive)]
    for i in rng.permutation(idx):
        s = tuple(sorted(set(first) ^ {int(i)}))
        if s or not nonempty:
            return s
    return first  # a single live op in a layer that cannot be empty: only one subset exists


def sample_two_path(probs: np.ndarray, alive: np.ndarray, nonempty: list[bool], rng: np.random.Generator,
                    *, tries: int = 64) -> TwoPath:
    """Two distinct subsets per layer from the α-Bernoulli, and which one to forward.

    The choice is drawn from the two subsets' renormalised probabilities (computed again, differentiably, by
    the supernet).
    """
    pairs, choice = [], []
    for j, ne in enumerate(nonempty):
        a = _draw(probs[j], alive[j], ne, rng)
        b = _other(a, probs[j], alive[j], ne, rng, tries)
        pa, pb = subset_prob(probs[j], alive[j], a), subset_prob(probs[j], alive[j], b)
        pairs.append((a, b))
        choice.append(int(rng.random() >= pa / (pa + pb)))
    return TwoPath(tuple(pairs), tuple(choice))


def subset_prob(p: np.ndarray, alive: np.ndarray, subset: tuple[int, ...]) -> float:
    on = np.zeros(p.shape, dtype=bool)
    on[list(subset)] = True
    return float(np.prod(np.where(on, p, 1.0 - p)[alive]))
