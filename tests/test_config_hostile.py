"""Hostile config files (issue 11): wrong shapes and nonsense values are one line naming the field and range."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nse_hw.config import check_ranges, in_range
from nse_hw.evolve.config import SEARCH_CONFIGS, load_search_config
from nse_hw.train.recipe import TRAIN_CONFIGS, load_train_config
from tests.fixtures.cli import assert_refused, invoke

ARCH = "configs/archs/mobilenetv2-1.0-224.json"


@pytest.mark.parametrize("interval, inside, outside", [
    ("[1, inf)", [1, 10**9], [0, -5, float("inf"), float("nan")]),
    ("(0, 1)", [0.5], [0, 1, -0.1]),
    ("[8, 1024]", [8, 1024], [7, 100000]),
])
def test_in_range(interval, inside, outside):
    assert all(in_range(v, interval) for v in inside)
    assert not any(in_range(v, interval) for v in outside)


def test_check_ranges_names_field_and_range():
    with pytest.raises(ValueError, match=r"cfg: lr=-1.0 is out of range; allowed: \(0, inf\)"):
        check_ranges(SimpleNamespace(lr=-1.0), {"lr": "(0, inf)"}, what="cfg")


@pytest.mark.parametrize("body", ["- 1\n- 2\n", "42\n", "just a string\n"])
def test_search_config_must_be_a_mapping(tmp_path, body):
    (tmp_path / "c.yaml").write_text(body)
    res = invoke("search", "--latency", "80ms", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run")
    assert_refused(res, "must hold a mapping")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("body", ["- 1\n", "7\n", "presets: [1, 2]\ndefault_preset: 0\n", "presets: {a: [1]}\n",
                                  "default_preset: [x]\n"])
def test_train_config_shapes(tmp_path, body):
    (tmp_path / "t.yaml").write_text(body)
    with pytest.raises(ValueError, match="t.yaml"):
        load_train_config(tmp_path / "t.yaml")


@pytest.mark.parametrize("section, text", [
    ("data:\n  limit_train: -5\n", "data.limit_train=-5 is out of range; allowed: [1, inf)"),
    ("proxy:\n  resolution: 100000\n", "proxy.resolution=100000 is out of range; allowed: [8, 1024]"),
    ("train:\n  epochs_per_round: 0\n", "train.epochs_per_round=0"),
    ("train:\n  steps_per_epoch: -1\n", "train.steps_per_epoch=-1"),
    ("data:\n  batch_size: 0\n", "data.batch_size=0"),
    ("train:\n  lr: -0.1\n", "train.lr=-0.1"),
    ("train:\n  lr: .nan\n", "train.lr=nan"),
    ("train:\n  path_prob: 1.5\n", "train.path_prob=1.5"),
    ("train:\n  path_sampling: window\n", "train.path_sampling must be 'uniform' or 'budget'"),
    ("train:\n  arch_betas: [0.9, 1.2]\n", "train.arch_betas=[0.9, 1.2]"),
    ("train:\n  arch_betas: [0.9, x]\n", "'train.arch_betas[1]' must be float"),
    ("latency:\n  window: [0.5]\n", "latency.window must be a pair"),
    ("evolve:\n  samples: true\n", "'evolve.samples' must be int"),
    ("seed: -3\n", "seed=-3"),
    ("data: [1, 2]\n", "config section 'data' must be a mapping"),
])
def test_search_config_ranges(tmp_path, section, text):
    (tmp_path / "c.yaml").write_text(section)
    with pytest.raises(ValueError) as err:
        load_search_config(tmp_path / "c.yaml")
    assert text in str(err.value) and "\n" not in str(err.value)


def test_search_cli_refuses_out_of_range_before_the_run(tmp_path):
    (tmp_path / "c.yaml").write_text("data:\n  limit_train: -5\n")
    res = invoke("search", "--latency", "80ms", "--config", tmp_path / "c.yaml", "--out", tmp_path / "run")
    assert_refused(res, "data.limit_train=-5 is out of range; allowed: [1, inf)")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("line, text", [
    ("limit_train: -5", "limit_train=-5 is out of range; allowed: [1, inf)"),
    ("resolution: 100000", "resolution=100000 is out of range; allowed: [8, 1024]"),
    ("epochs: 0", "epochs=0"),
    ("batch_size: -1", "batch_size=-1"),
    ("lr: 0", "lr=0.0"),
    ("label_smoothing: 1.5", "label_smoothing=1.5"),
    ("limit_test: 0", "limit_test=0"),
    ("seed: 99999999999999999999", "seed=99999999999999999999"),
])
def test_train_cli_refuses_out_of_range(tmp_path, line, text):
    (tmp_path / "t.yaml").write_text(line + "\n")
    out = tmp_path / "out"
    res = invoke("train", ARCH, "--config", tmp_path / "t.yaml", "--out", out)
    assert_refused(res, text)
    assert not out.exists()


def test_shipped_configs_pass():
    for path in SEARCH_CONFIGS.glob("*.yaml"):
        load_search_config(path)
    for path in TRAIN_CONFIGS.glob("*.yaml"):
        for preset in ("smoke", "default", "full", None):
            try:
                load_train_config(path, preset=preset)
            except ValueError as exc:
                assert "has no preset" in str(exc)
