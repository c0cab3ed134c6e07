"""Search configuration: dataclasses loaded from configs/search/*.yaml (strict keys), CLI flags on top."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nse_hw.config import check_ranges, load_config
from nse_hw.paths import CONFIGS

SEARCH_CONFIGS = CONFIGS / "search"
# every file there is a preset: default, smoke (a one-minute run), ct-fmnist-48 (the cluttered task's settings),
# imagenet-nse27 (the paper's, for GPUs)
PRESETS = tuple(sorted(p.stem for p in SEARCH_CONFIGS.glob("*.yaml")))


@dataclass
class DataConfig:
    source: str = "fashion-mnist"  # 'fashion-mnist', a directory of IDX files, or an ImageFolder root
    heldout_fraction: float = 0.1  # carved from the training images: α steps and scoring (disjoint from W's)
    limit_train: int | None = None
    limit_heldout: int | None = None
    batch_size: int = 64
    eval_batch_size: int = 256
    workers: int = 0


@dataclass
class ProxyConfig:
    """How the proxy task trains the space: the same layer sequence (ops, strides, skips) at
    ``resolution`` px with the data's channels and classes, every width scaled by ``width_mult``
    (nse_hw.space.adapt_arch). Latency is always counted on the deployment arch (the space's input and classes).
    A task (``configs/tasks/``) fixes its own input size, its canvas; ``resolution`` is for the other sources."""

    resolution: int = 32
    width_mult: float = 0.25
    channels_last: bool = True  # faster CPU convs; the same maths, float32 rounding 2-12x larger (blocks/fast.py)
    crop_dead_taps: bool = True  # skip kernel taps that only read padding at small resolutions (exact)
    depthwise_grad: bool = True  # (with crop_dead_taps) own depthwise gradients where oneDNN's are slow


@dataclass
class TrainConfig:
    epochs_per_round: int = 2
    steps_per_epoch: int | None = None  # cap (None: one pass over the weight split)
    optimizer: str = "sgd"  # weights: 'sgd' (momentum, nesterov) or 'adam'; cosine lr to 0 over the round
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    path_prob: float = 0.5  # each subspace op on with this probability in weight steps
    # 'uniform': every live op on with path_prob (the paper); 'budget': those probabilities tilted (one β per
    # round's live set) so the weight-step paths' expected latency is the target, like the archs that get scored
    path_sampling: str = "uniform"
    arch_lr: float = 5e-3  # Adam on α
    arch_betas: list[float] = field(default_factory=lambda: [0.0, 0.999])
    arch_every: int = 2  # one α step every N weight steps
    arch_warmup_epochs: int = 0  # weight-only epochs at the start of each round
    alpha_init: float | None = None  # None: the logit at which E[latency] meets the target (same for every op)
    p_eps: float = 1e-3  # p = eps + (1 - 2 eps) sigmoid(α)
    prune_threshold: float = -2.0  # relative to alpha_init: prune ops whose α fell this far below the start


@dataclass
class LatencyConfig:
    penalty: str = "squared"  # 'squared': λ (E/target - 1)^2; 'hinge': only the excess over the target
    lam: float = 1.0
    target_fraction: float = 0.95  # target = this x budget
    window: list[float] = field(default_factory=lambda: [0.85, 1.0])  # x budget: where round-end samples lie
    extras_window: list[float] = field(default_factory=lambda: [0.5, 0.85])  # cheaper extras


@dataclass
class EvolveConfig:
    subspace_size: int = 5  # K
    rounds: int | None = None  # None: (pool - 1) // (K - 1)
    samples: int = 2000  # in-window architectures sampled from α per round
    extras: int = 100  # cheaper architectures (compete for dominance, never kept)
    max_draws: int = 200_000  # rejection-sampling draws per round before giving up (logged)
    bn_batches: int = 50  # BN recalibration batches per scored architecture
    score_batches: int | None = None  # held-out batches per score (None: all)
    # Final pick. 0: the most accurate Pareto architecture within the budget (the paper). > 0: scores within
    # this many binomial standard errors of that one are tied (the score cannot tell them apart), and the
    # slowest tied in-budget architecture of the last round wins: it spends the budget the user gave.
    final_tie_se: float = 0.0
    # Re-rank (0: off, the paper). > 0: the last round's `rerank` best-scored in-budget archs (extras excluded)
    # are each trained alone the short way random search scores archs (baseline.steps, baseline.lr), and the
    # final rule above picks among them on those scores. The supernet's score ranks the proxy's retrained
    # networks poorly (benchmarks/search/RESULTS-search.md); the short score ranks them better, at ~9 CPU s an arch.
    rerank: int = 0
    # Successive halving ([] : off). Rungs [[n, steps], ...], e.g. [[16, 150], [4, 600]]: the last round's n best
    # in-budget archs by supernet score (extras excluded) each train `steps` steps alone from one seed on one data
    # stream, scored by held-out NLL; the best n of each rung go on to the next; the final pick is the last rung's
    # lowest NLL (evolve/standalone.py). Replaces the Pareto pick; exclusive with rerank.
    halving: list[list[int]] = field(default_factory=list)


@dataclass
class BaselineConfig:
    """Random search in the same space and budget: uniform in-window archs, each trained alone the same short
    way on the weight split and scored top-1 on the held-out split."""

    archs: int = 8  # how many archs (with time_s: how many are drawn at a time)
    steps: int = 150
    lr: float = 0.05
    # Compute budget (None: exactly `archs` archs). Otherwise keep drawing, training and scoring archs until
    # this many seconds of `clock` ('cpu': CPU seconds; 'wall') are spent since the search began (a resumed search
    # counts those before the kill too); the arch in flight finishes. For equal compute, set it to an NSE run's
    # result.json search_s.
    time_s: float | None = None
    clock: str = "cpu"
    # Final pick. 'best': the most accurate scored arch (the fastest on a tie). 'nse': NSE's final rule on the
    # scored archs (the most accurate Pareto arch in budget, evolve.final_tie_se included).
    pick: str = "best"
    # Score every draw with NSE's successive-halving scorer (evolve.halving: its first rung for every draw, its
    # later rungs for the best) instead of baseline.steps top-1; the pick is the last rung's lowest NLL.
    halving: bool = False


@dataclass
class SearchConfig:
    space: str = "nse27-proxyless224"
    seed: int = 0
    threads: int | None = None  # torch threads per process (None: nse_hw.train.threads' choice); the run records it
    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    evolve: EvolveConfig = field(default_factory=EvolveConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def check(self) -> SearchConfig:
        check_ranges(self, RANGES, what="bad search config")
        for name in ("latency.window", "latency.extras_window", "train.arch_betas"):
            if len(operator.attrgetter(name)(self)) != 2:
                raise ValueError(f"bad search config: {name} must be a pair [lo, hi]")
        lo, hi = self.latency.window
        elo, ehi = self.latency.extras_window
        problems = [
            (not lo < hi, "latency.window must be [lo, hi] with 0 < lo < hi <= 1"),
            (not elo < ehi <= lo, "latency.extras_window must lie below latency.window"),
            (any(len(r) != 2 or min(r) < 1 for r in self.evolve.halving),
             "evolve.halving must be a list of [candidates, steps] rungs, each >= 1"),
            (bool(self.evolve.halving) and self.evolve.rerank > 0,
             "evolve.halving and evolve.rerank exclude each other"),
            (self.baseline.halving and not self.evolve.halving,
             "baseline.halving needs evolve.halving's rungs (the scorer it shares with NSE)"),
            (self.latency.penalty not in ("squared", "hinge"), "latency.penalty must be 'squared' or 'hinge'"),
            (self.train.optimizer not in ("sgd", "adam"), "train.optimizer must be 'sgd' or 'adam'"),
            (self.train.path_sampling not in ("uniform", "budget"),
             "train.path_sampling must be 'uniform' or 'budget'"),
            (self.baseline.clock not in ("cpu", "wall"), "baseline.clock must be 'cpu' or 'wall'"),
            (self.baseline.pick not in ("best", "nse"), "baseline.pick must be 'best' or 'nse'"),
        ]
        for bad, msg in problems:
            if bad:
                raise ValueError(f"bad search config: {msg}")
        return self


# Allowed values of every numeric field (None, where a field allows it, means unset). `threads` is checked by
# the thread handling.
RANGES = {
    "seed": "[0, 4294967295]",
    "data.heldout_fraction": "(0, 1)", "data.limit_train": "[1, inf)", "data.limit_heldout": "[1, inf)",
    "data.batch_size": "[1, inf)", "data.eval_batch_size": "[1, inf)", "data.workers": "[0, 64]",
    "proxy.resolution": "[8, 1024]", "proxy.width_mult": "(0, 4]",
    "train.epochs_per_round": "[1, inf)", "train.steps_per_epoch": "[1, inf)", "train.lr": "(0, inf)",
    "train.momentum": "[0, 1)", "train.weight_decay": "[0, inf)", "train.path_prob": "(0, 1)",
    "train.arch_lr": "(0, inf)", "train.arch_betas": "[0, 1)", "train.arch_every": "[1, inf)",
    "train.arch_warmup_epochs": "[0, inf)", "train.alpha_init": "(-inf, inf)", "train.p_eps": "(0, 0.5)",
    "train.prune_threshold": "(-inf, 0]",
    "latency.lam": "[0, inf)", "latency.target_fraction": "(0, 1]", "latency.window": "(0, 1]",
    "latency.extras_window": "(0, 1]",
    "evolve.subspace_size": "[2, inf)", "evolve.rounds": "[1, inf)", "evolve.samples": "[1, inf)",
    "evolve.extras": "[0, inf)", "evolve.max_draws": "[1, inf)", "evolve.bn_batches": "[1, inf)",
    "evolve.score_batches": "[1, inf)", "evolve.final_tie_se": "[0, inf)", "evolve.rerank": "[0, inf)",
    "baseline.archs": "[1, inf)", "baseline.steps": "[1, inf)", "baseline.lr": "(0, inf)",
    "baseline.time_s": "(0, inf)",
}


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return SEARCH_CONFIGS / f"{name}.yaml"


def load_search_config(path: str | Path | None, **overrides: Any) -> SearchConfig:
    return load_config(SearchConfig, path, **overrides).check()
