"""Fixtures for training tests: a small deployment arch (tiny space, distinct ops per layer) and a fast config."""

from __future__ import annotations

from pathlib import Path

import pytest

from nse_hw.space import Arch, parse_layer

TINY_CONFIG = """\
epochs: 2
batch_size: 32
lr: 0.05
warmup_epochs: 0.5
width_mult: 0.5
resolution: 32
limit_train: 256
limit_heldout: 96
limit_test: 128
crop_padding: 2
hflip: true
eval_batch_size: 128
ema_decay: 0.9
ema_bn_batches: 2
"""


@pytest.fixture
def tiny_arch(tiny_space) -> Arch:
    return tiny_space.arch([parse_layer(s) for s in ("mb_k3_e3", "mb_k5_e3", "rec_k5_e2", "mb_k3_e3_d2")])


@pytest.fixture
def tiny_files(tmp_path, tiny_arch) -> tuple[Path, Path]:
    """(arch.json, train config YAML) in tmp_path."""
    (tmp_path / "arch.json").write_text(tiny_arch.dumps())
    (tmp_path / "train.yaml").write_text(TINY_CONFIG)
    return tmp_path / "arch.json", tmp_path / "train.yaml"
