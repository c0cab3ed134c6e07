"""Network size estimates (parameters, activations, MACs) and the refusal of what cannot fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nse_hw.blocks import build_network
from nse_hw.space import adapt_arch, load_arch, load_space
from nse_hw.space.size import check_fits, estimate, largest_supernet
from tests.fixtures.cli import assert_refused, invoke

ARCHS = "configs/archs"


@pytest.mark.parametrize("name", ["mobilenetv2-1.0-224", "mnasnet-a1-224", "proxylessnas-mobile-224"])
def test_params_match_the_built_network(name):
    arch = load_arch(f"{ARCHS}/{name}.json")
    for a in (arch, adapt_arch(arch, resolution=32, channels=1, classes=10, width_mult=0.25)):
        assert estimate(a).params == sum(p.numel() for p in build_network(a).parameters())


def test_paper_figures():
    # MobileNetV2 1.0-224 (Sandler et al. 2018, Table 4): 3.4 M params (torchvision: 3,504,872), 300 M MACs;
    # MnasNet-A1 (Tan et al. 2019, Table 1): 312 M MACs
    v2 = estimate(load_arch(f"{ARCHS}/mobilenetv2-1.0-224.json"))
    assert v2.params == 3_504_872 and round(v2.macs / 1e6) == 301
    assert round(estimate(load_arch(f"{ARCHS}/mnasnet-a1-224.json")).macs / 1e6) == 313
    # its 112x112x32 stem output alone: conv, BN and ReLU6 outputs kept for backward
    assert v2.activations > 3 * 112 * 112 * 32


def test_shipped_spaces_and_archs_fit():
    for name in ("mobilenetv2-1.0-224", "mnasnet-a1-224", "proxylessnas-mobile-224"):  # deployment, batch 128
        check_fits(estimate(load_arch(f"{ARCHS}/{name}.json")), batch=128, what=name, limit=16 * 2**30)
    nse27 = load_space("nse27-proxyless224")
    laptop = largest_supernet(nse27, resolution=32, channels=1, classes=10, width_mult=0.25, k=5)
    check_fits(estimate(laptop), batch=64, what="laptop supernet", limit=2 * 2**30)
    gpu = largest_supernet(nse27, resolution=224, channels=3, classes=1000, width_mult=1.0, k=5)  # imagenet-nse27
    check_fits(estimate(gpu), batch=128, what="imagenet supernet", limit=80 * 2**30)


def test_too_big_is_refused_with_the_figure():
    arch = load_arch(f"{ARCHS}/mobilenetv2-1.0-224.json")
    with pytest.raises(ValueError, match=r"needs about 9.5 GiB to train at batch 128 \(3.5 M params"):
        check_fits(estimate(arch), batch=128, what="mobilenetv2", limit=2**30)


def test_train_refuses_a_10000_layer_arch_up_front(tmp_path):
    d = json.loads(Path(f"{ARCHS}/mobilenetv2-1.0-224.json").read_text())
    d["layers"] = [{"ops": "mb_k3_e6", "out": 320, "stride": 1}] * 10_000
    (tmp_path / "huge.json").write_text(json.dumps(d))
    out = tmp_path / "out"
    res = invoke("train", tmp_path / "huge.json", "--preset", "smoke", "--out", out)
    assert_refused(res, "proxy network 32x32x1->10 (10000 layers) needs about")
    assert not any(p for p in out.rglob("*") if not p.name.startswith(".")) if out.exists() else True
