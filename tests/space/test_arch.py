import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nse_hw.space import Arch, load_arch, save_arch

EXAMPLE = {"format": "nse-hw/arch/1", "input": [224, 224, 3], "classes": 1000,
           "stem": {"op": "conv_k3", "out": 32, "stride": 2},
           "layers": [{"ops": "mb_k3_e1", "out": 16, "stride": 1},
                      {"ops": "mb_k5_e3+mb_k3_e6", "out": 24, "stride": 2},
                      {"ops": "skip", "out": 24, "stride": 1}],
           "head": {"out": 1280}}


def test_design_example_round_trips(tmp_path):
    arch = Arch.from_dict(EXAMPLE)
    assert arch.to_dict() == EXAMPLE
    save_arch(arch, tmp_path / "a.json")
    assert load_arch(tmp_path / "a.json") == arch
    assert arch.layer_inputs() == [(112, 112, 32), (112, 112, 16), (56, 56, 24), (56, 56, 24)]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sampled_archs_round_trip(nse27, seed):
    import numpy as np

    arch = nse27.sample(np.random.default_rng(seed))
    assert Arch.from_dict(json.loads(arch.dumps())) == arch
    assert nse27.arch(nse27.choices_of(arch)) == arch


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["mean", "sum"]))
def test_join_round_trips_and_mean_is_not_written(nse27, seed, join):
    import dataclasses

    import numpy as np

    arch = dataclasses.replace(nse27.sample(np.random.default_rng(seed)), join=join)
    d = json.loads(arch.dumps())
    assert ("join" in d) == (join == "sum") and Arch.from_dict(d) == arch
    assert arch != dataclasses.replace(arch, join="mean" if join == "sum" else "sum")


def test_bad_join_is_named():
    with pytest.raises(ValueError, match="join must be one of mean, sum, got \"avg\""):
        Arch.from_dict({**EXAMPLE, "join": "avg"})
    assert Arch.from_dict({**EXAMPLE, "join": "mean"}) == Arch.from_dict(EXAMPLE)


def test_skip_where_width_changes_is_rejected():
    bad = json.loads(json.dumps(EXAMPLE))
    bad["layers"][1]["ops"] = "skip"
    with pytest.raises(ValueError, match="layer 1 is 'skip'"):
        Arch.from_dict(bad)


def test_wrong_format_and_not_json(tmp_path):
    (tmp_path / "v2.json").write_text(json.dumps({**EXAMPLE, "format": "nse-hw/arch/2"}))
    with pytest.raises(ValueError, match="format"):
        load_arch(tmp_path / "v2.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        load_arch(tmp_path / "x.json")
    with pytest.raises(ValueError, match="missing"):
        Arch.from_dict({"format": "nse-hw/arch/1"})


def test_unknown_op_in_arch_is_named():
    bad = json.loads(json.dumps(EXAMPLE))
    bad["layers"][2]["ops"] = "mb_k4_e6"
    with pytest.raises(ValueError, match="mb_k4_e6"):
        Arch.from_dict(bad)


def test_adapt_arch_keeps_layer_sequence(nse27):
    import numpy as np

    from nse_hw.space import adapt_arch

    arch = nse27.sample(np.random.default_rng(1))
    proxy = adapt_arch(arch, resolution=32, channels=1, classes=10, width_mult=0.5)
    assert [s.ops for s in proxy.layers] == [s.ops for s in arch.layers]
    assert proxy.input == (32, 32, 1) and proxy.classes == 10
    assert [s.out for s in proxy.layers][:2] == [8, 12] and proxy.head_out == 640
    # identity structure is preserved, so skips stay legal
    assert Arch.from_dict(proxy.to_dict()) == proxy


def test_adapt_arch_widths_round_half_up_and_stay_distinct(nse27):
    """x0.25 of the 24/40/80-wide stages is 6/10/20: multiples of 4 by the MobileNet rule (half up, never more
    than 10% down) are 8/12/20; Python's round() (half to even) made both 6 and 10 into 8."""
    import numpy as np

    from nse_hw.space import adapt_arch

    proxy = adapt_arch(nse27.sample(np.random.default_rng(1)), resolution=32, channels=1, classes=10,
                       width_mult=0.25)
    widths = sorted({s.out for s in proxy.layers})
    assert widths == [4, 8, 12, 20, 24, 48, 80] and proxy.stem_out == 8 and proxy.head_out == 320
