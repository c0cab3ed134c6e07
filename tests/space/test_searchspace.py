import pytest

from nse_hw.space import load_space, space_from_dict


def test_nse27_skeleton(nse27):
    assert len(nse27.pool) == 27
    outs = [p.out for p in nse27.positions]
    assert outs == [16] + [24] * 4 + [40] * 4 + [80] * 4 + [96] * 4 + [192] * 4 + [320]
    strides = [p.stride for p in nse27.positions if p.searchable]
    assert strides == [2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    # skip is legal in exactly the stride-1 same-width layers: 3 per stage of depth 4
    assert sum(p.skippable for p in nse27.positions) == 15
    arch = nse27.arch([(nse27.pool[0],)] * 21)
    assert arch.layer_inputs()[-1] == (7, 7, 320)


def test_unknown_space_lists_known():
    with pytest.raises(ValueError, match="unknown space 'nope'.*nse27-proxyless224"):
        load_space("nope")


def test_malformed_pool_token_is_named(tiny_space):
    cfg = {"name": "x", "input": [32, 32, 3], "classes": 10, "stem": {"op": "conv_k3", "out": 8, "stride": 2},
           "stages": [{"out": 8, "depth": 1, "stride": 1}], "head": {"out": 16}, "pool": ["mb_k3_e1", "mb_k3_x"]}
    with pytest.raises(ValueError, match="mb_k3_x"):
        space_from_dict(cfg)


def test_sample_is_seeded(tiny_space):
    import numpy as np

    a = tiny_space.sample(np.random.default_rng(3))
    b = tiny_space.sample(np.random.default_rng(3))
    assert a == b
