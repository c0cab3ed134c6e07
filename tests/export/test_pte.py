"""ExecuTorch programs (an optional extra): float32 and int8 lowered to XNNPACK, refusals in one line."""

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from nse_hw.errors import NseError
from nse_hw.export import pte
from nse_hw.export.pte import INSTALL_HINT, export_pte, export_pte_int8, require_executorch
from tests.export.test_tflite import tiny_net

NCHW = (1, 3, 32, 32)
has_executorch = pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                                    reason="ExecuTorch (optional extra) is not installed")


def test_missing_executorch_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(pte, "executorch_available", lambda: False)
    with pytest.raises(NseError, match="pip install -e '.\\[executorch\\]'"):
        require_executorch()
    with pytest.raises(NseError, match="ExecuTorch is not installed"):
        export_pte(tiny_net(), NCHW, tmp_path / "m.pte")
    assert not (tmp_path / "m.pte").exists() and "executorch==1.5.1" in INSTALL_HINT


@has_executorch
@pytest.mark.slow
def test_float_and_int8_programs_run_and_match_torch(tmp_path):
    from nse_hw.profilers.host import get_runner

    net = tiny_net()
    x = np.random.default_rng(0).standard_normal((16, *NCHW[1:]), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    session = get_runner("executorch", threads=1).load(export_pte(net, NCHW, tmp_path / "m.pte"))
    assert session.input_shape == NCHW
    assert np.abs(session.run(x) - ref).max() < 1e-4
    cal = [np.random.default_rng(1).standard_normal((32, 32, 32, 3), dtype=np.float32)]
    s8 = get_runner("executorch", threads=1).load(export_pte_int8(net, NCHW, tmp_path / "m8.pte", cal))
    y8 = s8.run(x)
    assert (y8.argmax(1) == ref.argmax(1)).mean() >= 0.75 and np.abs(y8 - ref).max() < 0.5
    assert s8.time(warmup=1, runs=3).shape == (3,)


class Cumsum(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1)


class Cummax(nn.Module):
    def forward(self, x):
        return torch.cummax(x, dim=1).values


@has_executorch
@pytest.mark.slow
def test_an_op_xnnpack_does_not_take_is_named_with_its_layer(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 8, 3), Cumsum(), nn.Conv2d(8, 8, 1)).eval()
    with pytest.raises(NseError, match="op aten.cumsum.* in layer 1 is not delegated to ExecuTorch's XNNPACK"):
        export_pte(net, NCHW, tmp_path / "m.pte")
    net = nn.Sequential(nn.Conv2d(3, 8, 3), Cummax()).eval()  # not even core ATen: named by the exporter
    with pytest.raises(NseError, match="failed at op aten.cummax"):
        export_pte(net, NCHW, tmp_path / "m.pte")
    assert not (tmp_path / "m.pte").exists()


@has_executorch
@pytest.mark.slow
def test_global_average_pool_is_delegated(tmp_path):
    from nse_hw.profilers.host import get_runner

    from nse_hw.blocks.net import Classifier

    net = nn.Sequential(nn.Conv2d(3, 8, 3), Classifier(8, 10)).eval()  # x.mean((2, 3)): rewritten, same values
    x = np.random.default_rng(0).standard_normal((4, *NCHW[1:]), dtype=np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    session = get_runner("executorch", threads=1).load(export_pte(net, NCHW, tmp_path / "m.pte"))
    assert np.abs(session.run(x) - ref).max() < 1e-4
