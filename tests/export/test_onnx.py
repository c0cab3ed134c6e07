import numpy as np
import onnx
import pytest
import torch
from nse_hw.profilers.host import get_runner
from torch import nn

from nse_hw.errors import NseError
from nse_hw.export.onnx import export_onnx

SHAPE = (1, 3, 32, 32)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                        nn.Conv2d(8, 8, 5, 1, 2, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.slow
def test_onnx_is_nchw_checked_and_matches_torch(tmp_path):
    net = small_net().train()
    path = export_onnx(net, SHAPE, tmp_path / "net.onnx")
    assert net.training  # the caller's mode is restored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]
    proto = onnx.load(path)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,) = proto.graph.input
    assert inp.name == "input"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == list(SHAPE)
    assert [o.name for o in proto.graph.output] == ["output"]

    x = np.random.default_rng(0).standard_normal((8, *SHAPE[1:]), dtype=np.float32)
    y = get_runner("onnxruntime", threads=1).load(path).run(x)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).max() < 1e-4


class _Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom\nsecond line")


def test_export_failure_is_one_line_nse_error(tmp_path):
    with pytest.raises(NseError, match="ONNX export of _Broken failed") as err:
        export_onnx(_Broken(), SHAPE, tmp_path / "x.onnx")
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("shape", "opset", "match"), [((3, 32, 32), 18, "N, C, H, W"), (SHAPE, 13, "opset")])
def test_bad_arguments(tmp_path, shape, opset, match):
    with pytest.raises(NseError, match=match):
        export_onnx(small_net(), shape, tmp_path / "x.onnx", opset=opset)
