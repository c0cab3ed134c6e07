"""A classic network exported is the network it is, and the table prices exactly the ops it runs."""

import collections
import dataclasses

import pytest

from nse_hw.blocks import build_network
from nse_hw.export.tflite import export_tflite
from nse_hw.latency import arch_components
from nse_hw.paths import CONFIGS
from nse_hw.space import load_arch


def tflite_ops(arch, path) -> collections.Counter:
    from ai_edge_litert.interpreter import Interpreter

    p = export_tflite(build_network(arch, seed=0).eval(), (1, *arch.input), path)
    return collections.Counter(d["op_name"] for d in Interpreter(model_path=str(p))._get_ops_details())


@pytest.mark.slow
def test_mobilenetv2_converts_to_mobilenetv2s_ops(tmp_path):
    arch = load_arch(CONFIGS / "archs" / "mobilenetv2-1.0-224.json")
    assert arch.join == "sum"
    ops = tflite_ops(arch, tmp_path / "mbv2.tflite")
    # 17 MBConvs (16 with a 1x1 expand) + stem + head: 35 convs, 17 depthwise; 10 residual adds; no multiply
    assert ops["CONV_2D"] == 35 and ops["DEPTHWISE_CONV_2D"] == 17 and ops["FULLY_CONNECTED"] == 1
    assert ops["ADD"] == 10 and ops["MUL"] == 0
    keys = collections.Counter()
    for c in arch_components(arch):
        for k, n in c.keys:
            keys[k.split("|")[0]] += n
    assert keys["add"] == ops["ADD"] and keys["scale"] == 0 and keys["mb_k3_e6"] + keys["mb_k3_e1"] == 17
    # the mean rule multiplies: 10 residual means, of which the converter folds the 1/2 into the next conv
    # where the sum feeds only that conv (5 layers that end a stage), so 5 MULs remain
    mean = dataclasses.replace(arch, join="mean", input=(96, 96, 3))
    assert tflite_ops(mean, tmp_path / "mean.tflite")["MUL"] == 5
