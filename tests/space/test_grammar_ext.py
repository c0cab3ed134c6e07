"""The grammar's extension for imported networks: absolute middle widths (``_m``), per-op activation (``_re``),
activated stems, the head's activation and a classifier hidden layer; old tokens and files unchanged."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nse_hw.paths import CONFIGS
from nse_hw.space import Arch, Op, format_layer, format_op, load_arch, parse_layer, parse_op
from nse_hw.space.scale import scale_arch

odd = st.integers(0, 7).map(lambda i: 2 * i + 1)
acts = st.sampled_from([(False, False), (True, False), (False, True)])  # relu6, hs, re
ratio_ops = st.builds(lambda k, e, d, se, a: Op("mb", k, e, d, se, a[0], re=a[1]), odd, st.integers(1, 16),
                      st.integers(1, 8), st.booleans(), acts)
mid_ops = st.builds(lambda k, m, d, se, a: Op("mb", k, d=d, se=se, hs=a[0], m=m, re=a[1]), odd,
                    st.integers(1, 8192), st.integers(1, 8), st.booleans(), acts)
stems = st.builds(lambda k, a: Op("conv", k, hs=a[0], re=a[1]), odd, acts)


@given(st.one_of(ratio_ops, mid_ops, stems))
def test_extended_ops_round_trip(op):
    text = format_op(op)
    assert parse_op(text) == op and format_op(parse_op(text)) == text


@given(st.lists(st.one_of(ratio_ops, mid_ops), min_size=1, max_size=3, unique=True).map(tuple))
def test_extended_layers_round_trip(layer):
    assert parse_layer(format_layer(layer)) == layer


@pytest.mark.parametrize("text, mid_at_24, expands", [
    ("mb_k3_m72", 72, True), ("mb_k5_m72_se_re", 72, True), ("mb_k3_m24_hs", 24, True),  # m always expands
    ("mb_k3_e6", 144, True), ("mb_k3_e1_re", 24, False), ("mb_k3_e6_d2_se_hs", 144, True)])
def test_middle_width_on_paper(text, mid_at_24, expands):
    op = parse_op(text)
    assert op.mid(24) == mid_at_24 and op.expands == expands and format_op(op) == text


@pytest.mark.parametrize("bad", ["mb_k3_m0", "mb_k3_e6_m72", "mb_k3_m72_hs_re", "mb_k3_m072", "mb_k3_m9000",
                                 "rec_k5_e2_re", "conv_k3_se", "conv_k3_hs_re", "mb_k3_e6_re_se", "mb_k3_e4.5"])
def test_bad_extended_tokens(bad):
    with pytest.raises(ValueError, match="op token|out of range"):
        parse_op(bad)


def test_old_tokens_and_files_are_unchanged():
    assert parse_op("mb_k3_e6") == Op("mb", 3, 6) and parse_op("conv_k3") == Op("conv", 3)
    for path in sorted((CONFIGS / "archs").glob("*.json")):
        d = json.loads(path.read_text())
        assert load_arch(path).to_dict() == d  # loads, and writes back byte-for-byte the same object


MBV3_TAIL = {"format": "nse-hw/arch/1", "input": [224, 224, 3], "classes": 1000,
             "stem": {"op": "conv_k3_hs", "out": 16, "stride": 2},
             "layers": [{"ops": "mb_k3_e1_se_re", "out": 16, "stride": 2},
                        {"ops": "mb_k3_m72_re", "out": 24, "stride": 2},
                        {"ops": "mb_k5_m88_se_hs", "out": 24, "stride": 1}],
             "head": {"out": 576, "act": "hs"}, "classifier": {"hidden": 1024, "act": "hs"}, "join": "sum"}


def test_head_act_and_hidden_classifier_round_trip():
    arch = Arch.from_dict(MBV3_TAIL)
    assert arch.to_dict() == MBV3_TAIL and Arch.from_dict(json.loads(arch.dumps())) == arch
    assert (arch.head_act, arch.hidden, arch.hidden_act) == ("hs", 1024, "hs")
    with pytest.raises(ValueError, match="head.act must be one of"):
        Arch.from_dict({**MBV3_TAIL, "head": {"out": 576, "act": "gelu"}})
    with pytest.raises(ValueError, match="classifier.hidden"):
        Arch.from_dict({**MBV3_TAIL, "classifier": {"act": "hs"}})


def test_width_scaling_scales_middle_widths():
    arch = scale_arch(Arch.from_dict(MBV3_TAIL), width=0.5, head="scale")
    # make_divisible(72 * 0.5, 8) = 40 (36 rounds up to 40), make_divisible(88 * 0.5, 8) = 48 (44 -> 48)
    assert [op.m for s in arch.layers for op in s.ops] == [0, 40, 48]
    assert (arch.head_out, arch.hidden) == (288, 512)


def test_built_network_matches_the_grammar():
    import torch

    from nse_hw.blocks import build_network
    from nse_hw.space.size import estimate

    arch = Arch.from_dict(MBV3_TAIL)
    net = build_network(arch, seed=0).eval()
    assert sum(p.numel() for p in net.parameters()) == estimate(arch).params
    acts = [type(m).__name__ for m in net.modules() if type(m).__name__ in ("Hardswish", "ReLU", "ReLU6")]
    assert acts[0] == "Hardswish" and "ReLU6" not in acts  # stem h-swish; every op says its activation
    assert net.layers[1].branches[0][0][0].out_channels == 72  # the _m72 expand conv
    assert net(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
