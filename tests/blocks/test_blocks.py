import numpy as np
import pytest
import torch

from nse_hw.blocks import BUILDERS, MultiBranch, build_network, build_op
from nse_hw.space import Arch, LayerSpec, parse_layer, parse_op


@pytest.mark.parametrize("token", ["mb_k3_e1", "mb_k5_e6", "mb_k3_e3_d2", "mb_k5_e3_se_hs", "rec_k5_e2",
                                   "rec_k7_e1"])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_op_keeps_shape_contract(token, stride):
    block = build_op(parse_op(token), 8, 12, stride)
    y = block(torch.randn(2, 8, 15, 15))
    assert y.shape == (2, 12, 8 if stride == 2 else 15, 8 if stride == 2 else 15)


def test_one_builder_signature():
    import inspect

    for builder in BUILDERS.values():
        params = list(inspect.signature(builder).parameters.values())
        assert [p.name for p in params[:3]] == ["in_chs", "out_chs", "stride"]
        assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])


def test_multibranch_is_mean_of_terms_with_identity():
    torch.manual_seed(0)
    layer = MultiBranch(8, LayerSpec(parse_layer("mb_k3_e1+mb_k5_e3"), 8, 1)).eval()
    x = torch.randn(1, 8, 6, 6)
    expected = (layer.branches[0](x) + layer.branches[1](x) + x) / 3
    torch.testing.assert_close(layer(x), expected)
    assert MultiBranch(8, LayerSpec((), 8, 1))(x) is x


def test_sum_join_is_a_plain_residual():
    torch.manual_seed(0)
    layer = MultiBranch(8, LayerSpec(parse_layer("mb_k3_e1+mb_k5_e3"), 8, 1), "sum").eval()
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(layer(x), layer.branches[0](x) + layer.branches[1](x) + x)


def test_no_identity_when_width_changes():
    layer = MultiBranch(8, LayerSpec(parse_layer("mb_k3_e1"), 16, 1)).eval()
    x = torch.randn(1, 8, 6, 6)
    torch.testing.assert_close(layer(x), layer.branches[0](x))


def test_any_sampled_arch_builds(tiny_space):
    for seed in range(5):
        arch = tiny_space.sample(np.random.default_rng(seed), p_skip=0.5)
        net = build_network(arch, seed=seed)
        assert isinstance(net, torch.nn.Module)
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_build_is_seeded(tiny_space):
    arch: Arch = tiny_space.sample(np.random.default_rng(0))
    a, b = build_network(arch, seed=1), build_network(arch, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
