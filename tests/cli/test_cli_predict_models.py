"""`nse-hw latency predict MODEL` for model files and names: the breakdown, and bad input (one line, exit 2,
nothing written)."""

import importlib.util
import json
import os

import pytest

from nse_hw.latency import LatencyTable
from nse_hw.latency.keys import arch_components
from nse_hw.latency.onnx_reader import read_onnx
from nse_hw.latency.recognise import recognise
from tests.fixtures.cli import assert_refused, invoke
from tests.fixtures.onnx_nets import NetBuilder, tiny_mbv3


@pytest.fixture
def tiny(tmp_path):
    """The tiny ONNX net and a table holding every ReLU6 / h-swish key it needs (ReLU keys come from twins)."""
    path = tiny_mbv3(tmp_path / "tiny.onnx")
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1})
    for c in arch_components(recognise(read_onnx(path)).arch):
        for k, _ in c.keys:
            table.set(k.replace("_re|", "|"), ms=0.5, source="measured")
    table.save(tmp_path / "t.json")
    return path, tmp_path / "t.json"


def test_predict_onnx_json_breakdown(tiny, tmp_path):
    path, table = tiny
    res = invoke("latency", "predict", path, "--table", table, "--json", "--save-arch", tmp_path / "a.json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # stem, 3 layers (+1 residual add), head, classifier (2 keys): 8 keys of 0.5 ms
    assert out["total_ms"] == pytest.approx(0.5 * 8)
    rows = {r["name"]: r for r in out["layers"]}
    assert rows["layer0"]["predicted"] == ["mb_k3_e1_se_re|in=16x16x16|out=16|s=2"]  # from its ReLU6 twin
    assert out["predicted_models"]["mb_k3_e1_se_re|in=16x16x16|out=16|s=2"] == "relu6 twin"
    assert rows["layer2"]["predicted"] == [] and len(rows["layer2"]["nodes"]) == 7
    assert out["imported"]["format"] == "onnx" and out["imported"]["arch"]["classifier"] == {"hidden": 128,
                                                                                               "act": "hs"}
    assert json.loads((tmp_path / "a.json").read_text())["stem"]["op"] == "conv_k3_hs"


def _refused(tmp_path, table, model, text, *extra):
    out = tmp_path / "never.json"
    res = invoke("latency", "predict", model, "--table", table, "--save-arch", out, *extra)
    assert_refused(res, text)
    assert not out.exists()


def test_corrupt_and_truncated_files(tiny, tmp_path):
    path, table = tiny
    (tmp_path / "junk.onnx").write_bytes(os.urandom(300))
    _refused(tmp_path, table, tmp_path / "junk.onnx", "not a valid ONNX model")
    (tmp_path / "half.onnx").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _refused(tmp_path, table, tmp_path / "half.onnx", "not a valid ONNX model")
    (tmp_path / "junk.tflite").write_bytes(os.urandom(300))
    _refused(tmp_path, table, tmp_path / "junk.tflite", "not a TFLite model")
    (tmp_path / "cut.tflite").write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(40))
    _refused(tmp_path, table, tmp_path / "cut.tflite", "corrupt or truncated TFLite model")
    _refused(tmp_path, table, tmp_path / "missing.onnx", "no such model file")


def test_dynamic_input_needs_input_size(tmp_path, tiny):
    _, table = tiny
    dyn = tiny_mbv3(tmp_path / "dyn.onnx", h="H")
    _refused(tmp_path, table, dyn, "give its size with --input-size N")
    res = invoke("latency", "predict", dyn, "--table", table, "--input-size", "32", "--json")
    assert res.exit_code == 0, res.output


def test_unsupported_op_names_the_node(tmp_path, tiny):
    _, table = tiny
    b = NetBuilder()
    t = b.act(b.conv("input", 3, 16, 3, 2), "relu6")
    t = b.node("Erf", [t])
    bad = b.save(tmp_path / "erf.onnx", b.tail(t, 16, 32, 10))
    _refused(tmp_path, table, bad, "cannot price node n_Erf_")
    _refused(tmp_path, table, bad, "(Erf)")


def test_unknown_model_name_and_missing_size(tmp_path, tiny):
    _, table = tiny
    _refused(tmp_path, table, "mobilenet_v9", "unknown torchvision model 'mobilenet_v9'", "--input-size", "224")
    _refused(tmp_path, table, "mobilenet_v2", "needs its input size")
    _refused(tmp_path, table, "mobilenet_v2@width_mult", "builder keywords are key=value", "--input-size", "224")
    if importlib.util.find_spec("timm") is None:
        _refused(tmp_path, table, "timm/mobilenetv3_large_100", "pip install 'nse-hw[timm]'", "--input-size", "224")
    _refused(tmp_path, table, "mobilenet_v2", "--width rescales arch files", "--width", "0.5")
