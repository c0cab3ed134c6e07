import math

import pytest
import torch
from torch import nn

from nse_hw.blocks import build_network
from nse_hw.train.recipe import (
    TRAIN_CONFIGS,
    TrainConfig,
    WarmupCosine,
    default_config_path,
    load_train_config,
    make_ema,
    make_optimizer,
    make_scheduler,
)


def test_shipped_configs_and_presets_load():
    smoke, used = load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml", preset="smoke")
    assert used == "smoke" and smoke.epochs == 1 and smoke.resolution == 32
    default, used = load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml")  # the file's default_preset
    assert used == "default" and default.epochs > smoke.epochs and default.width_mult > smoke.width_mult
    full, _ = load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml", preset="full")
    assert full.ema_decay is not None and full.limit_train is None
    imagenet, used = load_train_config(TRAIN_CONFIGS / "imagenet.yaml")
    assert used == "" and imagenet.epochs == 300 and imagenet.resolution == 224 and imagenet.nesterov
    # CLI overrides win over the preset; None means "not given"
    cfg, _ = load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml", preset="smoke", epochs=3, lr=None)
    assert cfg.epochs == 3 and cfg.lr == smoke.lr


def test_default_config_follows_the_data(tmp_path):
    assert default_config_path("fashion-mnist").name == "fashion-mnist.yaml"
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    assert default_config_path(str(tmp_path)).name == "imagenet.yaml"


def test_bad_configs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no preset 'huge'.*smoke"):
        load_train_config(TRAIN_CONFIGS / "fashion-mnist.yaml", preset="huge")
    (tmp_path / "c.yaml").write_text("epoch: 3\n")
    with pytest.raises(ValueError, match="unknown config key.*epoch"):
        load_train_config(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="width_mult"):
        TrainConfig(width_mult=0)
    with pytest.raises(ValueError, match="cannot read"):
        load_train_config(tmp_path / "missing.yaml")


def test_warmup_cosine_by_hand():
    f = WarmupCosine(warmup=2, total=10)
    # linear ramp over 2 steps, then cosine over the remaining 8: halfway (step 6) is 0.5, the end is 0
    assert [f(0), f(1), f(2)] == [0.5, 1.0, 1.0]
    assert f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    assert f(4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))


def test_no_weight_decay_on_bn_and_biases(tiny_arch):
    net = build_network(tiny_arch, seed=0)
    opt = make_optimizer(net, TrainConfig(weight_decay=1e-4))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    bn_and_bias = {id(p) for m in net.modules() for p in m.parameters(recurse=False)
                   if isinstance(m, nn.BatchNorm2d) or p.ndim == 1}
    assert {id(p) for p in no_decay["params"]} == bn_and_bias
    assert opt.defaults["nesterov"]


def test_scheduler_state_round_trips_and_ema(tiny_arch):
    net = build_network(tiny_arch, seed=0)
    cfg = TrainConfig(epochs=2, warmup_epochs=0.5, lr=0.2, ema_decay=0.5)
    opt = make_optimizer(net, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch=4)
    for _ in range(3):
        opt.step()
        sched.step()
    opt2 = make_optimizer(net, cfg)
    sched2 = make_scheduler(opt2, cfg, steps_per_epoch=4)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == sched.get_last_lr()
    assert make_ema(net, None) is None
    ema = make_ema(net, 0.5)
    w = next(net.parameters())
    before = next(ema.module.parameters()).detach().clone()
    with torch.no_grad():
        w.add_(1.0)
    ema.update_parameters(net)  # the first update copies: w0 + 1
    with torch.no_grad():
        w.add_(1.0)
    ema.update_parameters(net)  # then 0.5 * (w0 + 1) + 0.5 * (w0 + 2)
    assert torch.allclose(next(ema.module.parameters()), before + 1.5)
