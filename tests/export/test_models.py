"""import_model: an arch built, exported and read back is the same arch (ONNX and TFLite); torchvision names."""

import dataclasses
import importlib.util

import pytest

from nse_hw.blocks import build_network
from nse_hw.export.models import import_model, parse_name
from nse_hw.space import Arch

ARCH = Arch.from_dict({
    "format": "nse-hw/arch/1", "input": [64, 64, 3], "classes": 10, "join": "sum",
    "stem": {"op": "conv_k3_hs", "out": 16, "stride": 2},
    "layers": [{"ops": "mb_k3_e1_se_re", "out": 16, "stride": 1},
               {"ops": "mb_k5_m40_re", "out": 24, "stride": 2},
               {"ops": "mb_k3_e6_d2_hs", "out": 24, "stride": 1},
               {"ops": "mb_k7_m88_se_hs", "out": 32, "stride": 2},
               {"ops": "mb_k3_e3", "out": 32, "stride": 1}],
    "head": {"out": 96, "act": "hs"}, "classifier": {"hidden": 128, "act": "hs"}})


def test_arch_onnx_arch_round_trip(tmp_path):
    from nse_hw.export.onnx import export_onnx

    path = export_onnx(build_network(ARCH, seed=0), (1, 3, 64, 64), tmp_path / "n.onnx")
    imp = import_model(path)
    assert imp.arch == ARCH and imp.fmt == "onnx"
    assert not [n for n in imp.notes if "squeeze" in n]  # the blocks' SE width is the grammar's


@pytest.mark.slow
def test_arch_tflite_arch_round_trip(tmp_path):
    from nse_hw.export.tflite import export_tflite

    arch = dataclasses.replace(ARCH, head_act="re", hidden=0, hidden_act="relu6")
    path = export_tflite(build_network(arch, seed=0), (1, 64, 64, 3), tmp_path / "n.tflite")
    imp = import_model(path)
    assert imp.arch == arch and imp.fmt == "tflite"
    (tmp_path / "cut.tflite").write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])
    with pytest.raises(Exception, match="truncated"):
        import_model(tmp_path / "cut.tflite")


@pytest.mark.slow
def test_torchvision_mobilenet_v2_is_the_shipped_arch_file():
    from nse_hw.paths import CONFIGS
    from nse_hw.space import load_arch

    imp = import_model("mobilenet_v2", input_size=224)
    assert imp.arch == load_arch(CONFIGS / "archs" / "mobilenetv2-1.0-224.json")
    assert imp.fmt == "torchvision" and imp.arch.meta["imported_from"] == "mobilenet_v2"


@pytest.mark.slow
@pytest.mark.parametrize("name, arch_file", [("mobilenet_v3_large", "mobilenetv3-large-224.json"),
                                             ("mobilenet_v3_small", "mobilenetv3-small-224.json"),
                                             ("mnasnet1_0", "mnasnet-b1-1.0-224.json")])
def test_torchvision_networks_are_the_arch_files_written_from_their_papers(name, arch_file):
    from nse_hw.paths import CONFIGS
    from nse_hw.space import load_arch

    imp = import_model(name, input_size=224)
    assert imp.arch == load_arch(CONFIGS / "archs" / arch_file)


def test_model_names_parse():
    assert parse_name("mobilenet_v2@width_mult=0.5,num_classes=1001") == (
        "torchvision", "mobilenet_v2", {"width_mult": 0.5, "num_classes": 1001})
    assert parse_name("timm/mobilenetv3_large_100") == ("timm", "mobilenetv3_large_100", {})
    assert parse_name("torchvision/mnasnet0_5") == ("torchvision", "mnasnet0_5", {})


@pytest.mark.slow
def test_timm_mobilenetv3_is_the_arch_file():
    if importlib.util.find_spec("timm") is None:  # not importorskip: timm imports torchvision before our shim
        pytest.skip("timm is not installed (pip install 'nse-hw[timm]')")
    from nse_hw.paths import CONFIGS
    from nse_hw.space import load_arch

    imp = import_model("timm/mobilenetv3_large_100", input_size=224)  # its 1x1 conv_head after the pool: a linear
    assert imp.arch == load_arch(CONFIGS / "archs" / "mobilenetv3-large-224.json") and imp.fmt == "timm"
