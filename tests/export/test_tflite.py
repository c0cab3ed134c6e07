import numpy as np
import pytest
import torch
from nse_hw.profilers.host import get_runner
from torch import nn

from nse_hw.errors import NseError
from nse_hw.export.tflite import export_tflite, export_tflite_int8

SHAPE = (1, 32, 32, 3)


def tiny_net(*, head: bool = True) -> nn.Module:
    """Conv-BN-ReLU6, depthwise-BN-ReLU6, then (head) pool + linear; BN stats far from identity."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
              nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6()]
    if head:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def torch_nhwc(net: nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net.eval()(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).numpy()


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((16, *SHAPE[1:]), dtype=np.float32)


@pytest.mark.slow
def test_float_tflite_takes_nhwc_and_matches_torch(tmp_path, inputs):
    net = tiny_net()
    path = export_tflite(net, SHAPE, tmp_path / "net.tflite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.tflite"]  # no temp file left behind
    session = get_runner("litert", threads=1).load(path)
    assert session.input_shape == SHAPE
    y = session.run(inputs)
    assert y.shape == (16, 10)
    assert np.abs(y - torch_nhwc(net, inputs)).max() < 1e-4


@pytest.mark.slow
def test_feature_map_output_is_nhwc_and_model_mode_is_restored(tmp_path, inputs):
    net = tiny_net(head=False).train()  # converted in eval mode, handed back in train mode
    path = export_tflite(net, SHAPE, tmp_path / "fm.tflite")
    assert net.training
    y = get_runner("litert", threads=1).load(path).run(inputs[:4])
    expected = torch_nhwc(net, inputs[:4]).transpose(0, 2, 3, 1)
    assert y.shape == (4, 16, 16, 8)
    assert np.abs(y - expected).max() < 1e-4


@pytest.mark.slow
def test_int8_is_full_integer_and_agrees_with_float(tmp_path, inputs):
    from ai_edge_litert.interpreter import Interpreter

    net = tiny_net()
    calib = [np.random.default_rng(i).standard_normal((8, *SHAPE[1:]), dtype=np.float32) for i in range(4)]
    path = export_tflite_int8(net, SHAPE, tmp_path / "net8.tflite", calib)
    interp = Interpreter(model_path=str(path))
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert np.int8 in {d["dtype"] for d in interp.get_tensor_details()}
    y = get_runner("litert", threads=1).load(path).run(inputs)
    ref = torch_nhwc(net, inputs)
    assert (y.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert np.abs(y - ref).max() < 0.05 * np.abs(ref).max()


@pytest.mark.slow
def test_int8_needs_calibration(tmp_path):
    with pytest.raises(NseError, match="calibration"):
        export_tflite_int8(tiny_net(), SHAPE, tmp_path / "x.tflite", [])
    with pytest.raises(NseError, match="calibration array 0"):
        export_tflite_int8(tiny_net(), SHAPE, tmp_path / "x.tflite", [np.zeros((1, 8, 8, 3), np.float32)])
    assert not list(tmp_path.iterdir())


class _Fft(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(x).abs()


@pytest.mark.slow
def test_conversion_failure_is_one_line_naming_the_op(tmp_path):
    with pytest.raises(NseError) as err:
        export_tflite(_Fft(), (1, 8, 8, 3), tmp_path / "fft.tflite")
    msg = str(err.value)
    assert "\n" not in msg and "_fft_r2c" in msg and "_Fft" in msg
    assert not list(tmp_path.iterdir())


def test_bad_input_shape_is_an_nse_error(tmp_path):
    with pytest.raises(NseError, match="N, H, W, C"):
        export_tflite(tiny_net(), (32, 32, 3), tmp_path / "x.tflite")
