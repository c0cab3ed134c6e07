"""The importer on graphs whose arch is known on paper (built with onnx.helper, no torch), and on refusals."""

import numpy as np
import pytest

from nse_hw.errors import NseError
from nse_hw.latency.keys import arch_components
from nse_hw.latency.onnx_reader import read_onnx
from nse_hw.latency.recognise import recognise
from nse_hw.latency.variants import fill_keys, relu6_twin
from nse_hw.space import Arch, LayerSpec, parse_op
from tests.fixtures.onnx_nets import NetBuilder, tiny_mbv3


def test_tiny_mbv3_reads_as_its_arch(tmp_path):
    imp = recognise(read_onnx(tiny_mbv3(tmp_path / "n.onnx")))
    want = Arch((32, 32, 3), 10, parse_op("conv_k3_hs"), 16, 2,
                (LayerSpec((parse_op("mb_k3_e1_se_re"),), 16, 2), LayerSpec((parse_op("mb_k3_m40_re"),), 24, 2),
                 LayerSpec((parse_op("mb_k5_e3_hs"),), 24, 1)),  # 72 = 3 x 24: the ratio form, as old keys
                96, join="sum", head_act="hs", hidden=128, hidden_act="hs")
    assert imp.arch == want
    # SE squeeze 8 = max(8, 16 // 4): the grammar's width, no note; BN folded is noted
    assert imp.notes == ["BatchNormalization folded into the conv before it"]
    assert list(imp.units) == ["stem", "layer0", "layer1", "layer2", "head", "classifier"]
    assert len(imp.units["layer0"]) == 10  # dw, relu, pool, reduce, relu, expand, gate, mul, project, bn
    assert len(imp.units["layer2"]) == 7  # expand, hs, dw, hs, project, bn, add
    names = [c.name for c in imp.components()]
    assert names == ["stem", "layer0", "layer1", "layer2", "head", "classifier"]
    clf = imp.components()[-1].keys
    assert [k for k, _ in clf] == ["classifier|in=4x4x96|out=128", "classifier|in=1x1x128|out=10"]


def test_input_size_fills_a_dynamic_input(tmp_path):
    path = tiny_mbv3(tmp_path / "d.onnx", h="H")
    with pytest.raises(NseError, match="dynamic shape .* give its size with --input-size N"):
        read_onnx(path)
    assert recognise(read_onnx(path, input_size=64)).arch.input == (64, 64, 3)


def _net_with(tmp_path, middle):
    b = NetBuilder()
    t = b.act(b.conv("input", 3, 16, 3, 2), "relu6")
    t = middle(b, t)
    return read_onnx(b.save(tmp_path / "m.onnx", b.tail(t, 16, 32, 10)))


@pytest.mark.parametrize("middle, names", [
    (lambda b, t: b.node("LayerNormalization", [t, b.const(np.ones(16))]), "(LayerNormalization)"),
    (lambda b, t: b.act(b.conv(t, 16, 16, 3), "relu6"), "a full or grouped conv inside the network"),
    (lambda b, t: b.node("Conv", [t, b.const(np.zeros((16, 16, 3), np.float32))], kernel_shape=[3]), "(Conv (1-D))"),
    (lambda b, t: b.node("MatMul", [t, b.node("Transpose", [t], perm=[0, 1, 3, 2])]), "(Transpose)"),
    (lambda b, t: b.mbconv(t, 16, 16, residual=False), "no residual add"),
    (lambda b, t: b.node("Add", [b.mbconv(t, 16, 16, residual=False), b.mbconv(t, 16, 16, residual=False)]),
     "layers are chains, not branches"),
])
def test_what_no_table_prices_is_refused_naming_the_node(tmp_path, middle, names):
    with pytest.raises(NseError) as exc:
        recognise(_net_with(tmp_path, middle))
    msg = str(exc.value)
    assert names in msg and "cannot price" in msg and "\n" not in msg and "time this model whole" in msg


def test_relu_keys_are_priced_as_their_relu6_twin():
    from nse_hw.latency import LatencyTable

    assert relu6_twin("mb_k3_m40_re|in=8x8x16|out=24|s=2") == "mb_k3_m40|in=8x8x16|out=24|s=2"
    assert relu6_twin("head_re|in=2x2x24|out=96") == "head|in=2x2x24|out=96"
    assert relu6_twin("mb_k3_e6_hs|in=8x8x16|out=24|s=2") is None  # h-swish is not a fused twin
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1})
    table.set("mb_k3_e6|in=8x8x16|out=24|s=2", ms=0.25, source="measured")
    filled = fill_keys(["mb_k3_e6_re|in=8x8x16|out=24|s=2", "mb_k5_e6_re|in=8x8x16|out=24|s=2"], table)
    assert filled == ["mb_k3_e6_re|in=8x8x16|out=24|s=2"]  # no twin and no transfer model: left missing
    e = table.entries["mb_k3_e6_re|in=8x8x16|out=24|s=2"]
    assert (e["ms"], e["source"], e["model"], e["twin_source"]) == (0.25, "predicted", "relu6 twin", "measured")


def test_old_arch_keys_do_not_change():
    from nse_hw.paths import CONFIGS
    from nse_hw.space import load_arch

    arch = load_arch(CONFIGS / "archs" / "mobilenetv2-1.0-224.json")
    keys = [k for c in arch_components(arch) for k, _ in c.keys]
    assert keys[0] == "conv_k3|in=224x224x3|out=32|s=2" and keys[-2:] == ["head|in=7x7x320|out=1280",
                                                                          "classifier|in=7x7x1280|out=1000"]
