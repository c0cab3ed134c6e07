"""NSE's two ablations as search configs (issue 8), derived from a shipped config so they cannot drift from it.

- ``fixed-subspace``: one round over the K-op subspace NSE draws first (per layer a seeded permutation of the
  pool, its first K feasible ops); no evolution.
- ``full-pool``: one round over every feasible op of the pool (K = pool size): one-shot, no subspace.

Both keep the shipped run's total weight steps: epochs_per_round (and weight-only warmup epochs) times its
number of rounds, in one round (one cosine schedule). Everything else is unchanged, samples per round included.
"""

from __future__ import annotations

import copy

from nse_hw.evolve.config import SearchConfig

ABLATIONS = ("fixed-subspace", "full-pool")


def shipped_rounds(cfg: SearchConfig, *, pool: int) -> int:
    """The rounds a search with ``cfg`` runs over a pool of ``pool`` ops (as ``Context.rounds``)."""
    k = cfg.evolve.subspace_size
    return cfg.evolve.rounds or max(1, (pool - 1) // (k - 1))


def ablation_config(cfg: SearchConfig, kind: str, *, pool: int) -> SearchConfig:
    """``cfg`` turned into ablation ``kind`` over a pool of ``pool`` ops (``cfg`` itself is not changed)."""
    if kind not in ABLATIONS:
        raise ValueError(f"unknown ablation {kind!r} (one of {', '.join(ABLATIONS)})")
    if pool < 2:
        raise ValueError(f"an op pool needs at least 2 ops, got {pool}")
    rounds = shipped_rounds(cfg, pool=pool)
    out = copy.deepcopy(cfg)
    out.evolve.rounds = 1
    out.train.epochs_per_round = cfg.train.epochs_per_round * rounds
    out.train.arch_warmup_epochs = cfg.train.arch_warmup_epochs * rounds
    if kind == "full-pool":
        out.evolve.subspace_size = pool
    return out.check()


def weight_steps(cfg: SearchConfig, *, pool: int, steps_per_epoch: int) -> int:
    """Total weight steps of a search (``steps_per_epoch``: the run's steps per epoch after the config's cap)."""
    return shipped_rounds(cfg, pool=pool) * cfg.train.epochs_per_round * steps_per_epoch
