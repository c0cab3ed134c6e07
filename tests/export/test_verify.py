import numpy as np
import pytest
import torch
from torch import nn

from nse_hw.errors import NseError
from nse_hw.export.card import signed_error_pct
from nse_hw.export.ship import check_input_size, convert_model, prepare_out, resolve_checkpoint, total_stride
from nse_hw.export.verify import compare, verify
from nse_hw.space import parse_layer


def test_compare_by_hand():
    ref = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    got = ref.copy()
    got[1] = [0.0, 3.5, 1.0]  # argmax moves from 0 to 1 on image 1
    c = compare(ref, got, np.array([1, 1, 2]), inputs="three")
    assert c.images == 3 and c.max_abs_diff == 3.5
    assert c.mean_abs_diff == pytest.approx((3.0 + 3.5) / 9)
    assert c.top1_agreement == pytest.approx(2 / 3)
    assert c.top1_file == 1.0 and c.top1_torch == pytest.approx(2 / 3)
    assert not c.passes_float()
    assert compare(ref, ref, None, inputs="x").top1_file is None
    with pytest.raises(ValueError, match="output shape"):
        compare(ref, ref[:2], None, inputs="x")


def test_verify_feeds_the_layout_the_file_takes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(5, 2, 6, 6)
    seen = []

    def nhwc_runtime(a: np.ndarray) -> np.ndarray:  # a stand-in runtime that takes NHWC like a .tflite
        seen.append(a.shape)
        with torch.no_grad():
            return model(torch.from_numpy(a).permute(0, 3, 1, 2)).numpy()

    c = verify(model.train(), nhwc_runtime, x, None, layout="NHWC", inputs="random")
    assert seen == [(5, 6, 6, 2)] and c.max_abs_diff < 1e-6 and c.top1_agreement == 1.0
    assert model.training  # mode given back


def test_input_size_must_fit_the_total_stride(tiny_space):
    arch = tiny_space.arch([parse_layer("mb_k3_e3")] * 4)
    assert total_stride(arch) == 8  # stem s2, two s2 stages
    assert check_input_size(arch, None) == 32 and check_input_size(arch, 8) == 8
    with pytest.raises(NseError, match="input size 7 is too small.*total stride 8"):
        check_input_size(arch, 7)
    for bad in (0, -3):
        with pytest.raises(NseError, match=f"input size {bad} must be positive"):
            check_input_size(arch, bad)


def test_output_dir_and_checkpoint_resolution(tmp_path):
    prepare_out(tmp_path / "new", force=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    with pytest.raises(NseError, match="holds 1 file.*--force"):
        prepare_out(tmp_path / "full", force=False)
    assert prepare_out(tmp_path / "full", force=True) == tmp_path / "full"
    with pytest.raises(NseError, match="holds no best.pt"):
        resolve_checkpoint(tmp_path / "full")
    with pytest.raises(NseError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "nothing.pt")


def test_signed_error_sign():
    assert signed_error_pct(11.0, 10.0) == pytest.approx(10.0)  # over-prediction is positive
    assert signed_error_pct(9.0, 10.0) == pytest.approx(-10.0)


class _Cummax(nn.Module):
    label = "cummax_layer"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x, dim=1)[0]  # no TFLite lowering


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.layers = nn.Sequential(nn.ReLU(), _Cummax())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


@pytest.mark.slow
def test_unlowerable_op_names_the_op_and_the_layer(tmp_path):
    net = _Net()
    with pytest.raises(NseError, match=r"aten\.cummax.*in layer layers\.1 \(cummax_layer\)"):
        convert_model("tflite", net, (1, 1, 8, 8), tmp_path / "bad.tflite")
    assert not list(tmp_path.iterdir())
