"""The retraining recipe: its config (YAML with presets), optimiser, LR schedule and weight EMA.

MobileNetV2-style: SGD with Nesterov momentum, linear warmup then cosine decay (stepped per iteration),
label smoothing, weight decay on conv/linear weights only (not BN parameters or biases), optional EMA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nse_hw.config import check_ranges, from_dict, read_yaml
from nse_hw.paths import CONFIGS

TRAIN_CONFIGS = CONFIGS / "train"
PRESET_KEY = "presets"


@dataclass
class TrainConfig:
    """One retraining run. ``batch_size`` and ``lr`` are global (split over DDP ranks, not scaled)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    ema_decay: float | None = None  # per optimiser step; None = no EMA
    ema_bn_batches: int = 50  # training batches that re-estimate the EMA weights' BN statistics
    width_mult: float = 1.0  # channels of the proxy network relative to the deployment arch
    resolution: int | None = None  # None = the data's native size (Fashion-MNIST: 28 padded to 32)
    heldout_fraction: float = 0.1  # carved from train: picks the best epoch (the test split never does)
    limit_train: int | None = None
    limit_heldout: int | None = None
    limit_test: int | None = None
    crop_padding: int = 0  # random-crop augmentation on tensor batches (Fashion-MNIST); 0 = off
    hflip: bool = False
    eval_batch_size: int = 256
    workers: int = 0
    seed: int = 0
    threads: int | None = None  # torch threads per process (None: leave torch's; the CLI records its choice)
    # on CPU: kernel taps that only read padding skipped, own depthwise gradients on small maps
    # (nse_hw.blocks.fast.for_cpu_training): ~1.6x fewer CPU s per step at 32 px, float rounding as before
    fast_convs: bool = True
    # channels-last weights and activations (NHWC): on CPU a retrain in ~0.5x the CPU s (fast_convs on), but float32
    # rounding 2-12x larger through train-mode BN on 1x1/2x2 maps; off: 20 paired bench retrains gave -0.21 +/- 0.87
    # points, not shown equivalent within 0.5 (benchmarks/train-export/channels_last_retrain.py)
    channels_last: bool = False
    # which checkpoint the test split scores: 'best' (best held-out epoch) or 'last' (the final, annealed epoch:
    # free of the selection noise a small held-out split adds, what a benchmark of architectures wants)
    test_weights: str = "best"

    def __post_init__(self) -> None:
        check_ranges(self, RANGES, what="train config")
        if self.test_weights not in ("best", "last"):
            raise ValueError(f"train config: test_weights must be 'best' or 'last', got {self.test_weights!r}")


# Allowed values of every numeric field (None, where a field allows it, means unset).
RANGES = {
    "epochs": "[1, inf)", "batch_size": "[1, inf)", "lr": "(0, inf)", "momentum": "[0, 1)",
    "weight_decay": "[0, inf)", "label_smoothing": "[0, 1)", "warmup_epochs": "[0, inf)", "ema_decay": "(0, 1)",
    "ema_bn_batches": "[1, inf)", "width_mult": "(0, 4]", "resolution": "[8, 1024]", "heldout_fraction": "(0, 1)",
    "limit_train": "[1, inf)", "limit_heldout": "[1, inf)", "limit_test": "[1, inf)", "crop_padding": "[0, 64]",
    "eval_batch_size": "[1, inf)", "workers": "[0, 64]", "seed": "[0, 4294967295]",
}


def default_config_path(data: str) -> Path:
    """The proxy-task recipe for Fashion-MNIST (or IDX dirs), the cluttered-canvas recipe for a task, the ImageNet
    recipe for ImageFolder roots."""
    from nse_hw.train.cluttered import load_task

    if load_task(data) is not None:
        return TRAIN_CONFIGS / "ct-fmnist.yaml"
    root = Path(data)
    if data != "fashion-mnist" and (root / "train").is_dir() and (root / "val").is_dir():
        return TRAIN_CONFIGS / "imagenet.yaml"
    return TRAIN_CONFIGS / "fashion-mnist.yaml"


def load_train_config(path: str | Path, *, preset: str | None = None, **overrides: Any) -> tuple[TrainConfig, str]:
    """The file's base keys, then preset ``preset`` (its ``presets:`` section), then non-None overrides.

    Returns the config and the preset actually applied ('' when the file has none and none was asked for).
    """
    path = Path(path)
    data = read_yaml(path, what="train config") or {}
    if not isinstance(data, dict):
        raise ValueError(f"train config {path} must hold a mapping of keys to values, not a {type(data).__name__}")
    presets = data.pop(PRESET_KEY, None) or {}
    fallback = data.pop("default_preset", None)
    if not isinstance(presets, dict) or not all(isinstance(v, dict | None) for v in presets.values()):
        raise ValueError(f"train config {path}: {PRESET_KEY} must map preset names to mappings of keys")
    if not isinstance(fallback, str | None):
        raise ValueError(f"train config {path}: default_preset must be a preset name, got {fallback!r}")
    chosen = preset if preset is not None else fallback
    if chosen:
        if chosen not in presets:
            known = ", ".join(sorted(map(str, presets))) or "none"
            raise ValueError(f"train config {path} has no preset {chosen!r} (presets: {known})")
        data.update(presets[chosen] or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return from_dict(TrainConfig, data), chosen or ""
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay conv/linear weights only: BN scales/shifts and biases (1-D tensors) are left alone."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0)


class WarmupCosine:
    """LR factor at optimiser step ``i``: linear ramp over ``warmup`` steps, then cosine to 0 at ``total``.

    A picklable callable (not a lambda) so LambdaLR's state dict can be saved and restored.
    """

    def __init__(self, *, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, max(total, 1)

    def __call__(self, i: int) -> float:
        if i < self.warmup:
            return (i + 1) / self.warmup
        t = min(1.0, (i - self.warmup) / max(1, self.total - self.warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> LambdaLR:
    return LambdaLR(opt, WarmupCosine(warmup=round(cfg.warmup_epochs * steps_per_epoch),
                                      total=cfg.epochs * steps_per_epoch))


def make_ema(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """EMA of the parameters (torch's AveragedModel), or None.

    BN statistics are not averaged: the running stats of many past weights do not describe the averaged
    weights (on a 20-layer net trained for 500 steps that cost 60 points of top-1). The trainer re-estimates
    them for the EMA weights before every evaluation instead (:func:`recalibrate_bn`).
    """
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
