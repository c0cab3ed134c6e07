import pytest

from nse_hw.space import LayerSpec, load_arch
from nse_hw.space.scale import make_divisible, scale_arch

MBV2 = "configs/archs/mobilenetv2-1.0-224.json"


@pytest.mark.parametrize(("v", "expected"), [
    (32 * 0.35, 16),    # int(11.2 + 4) // 8 * 8 = 8 < 0.9 * 11.2, so + 8
    (16 * 0.35, 8),     # 5.6 -> 8 (the floor)
    (24 * 0.75, 24),    # int(22) // 8 * 8 = 16 < 16.2, so + 8
    (1280 * 1.4, 1792),
    (96 * 1.3, 128),    # 124.8 -> int(128.8) // 8 * 8 = 128
])
def test_make_divisible_on_paper(v, expected):
    assert make_divisible(v, 8) == expected


def test_mobilenetv2_width_rule_keeps_the_head_below_1():
    base = load_arch(MBV2)
    a = scale_arch(base, resolution=160, width=0.35, classes=1001)
    assert a.input == (160, 160, 3) and a.classes == 1001 and a.join == "sum"
    assert a.stem_out == 16 and [s.out for s in a.layers][:3] == [8, 8, 8] and a.head_out == 1280
    assert scale_arch(base, width=1.4).head_out == 1792
    assert scale_arch(base, width=0.5, head="scale").head_out == 640
    assert scale_arch(base) == base  # x1 at its own size is the same network


def test_bad_sizes_are_refused_naming_what():
    base = load_arch(MBV2)
    with pytest.raises(ValueError, match="smaller than the network's total stride 32"):
        scale_arch(base, resolution=16)
    with pytest.raises(ValueError, match="outside"):
        scale_arch(base, width=0.0)
    narrow = base.with_layers([LayerSpec(base.layers[0].ops, 8, 1), *base.layers[1:]])
    with pytest.raises(ValueError, match="width x0.05 makes the layer 0 width 8 round to 0 channels"):
        scale_arch(narrow, width=0.05)  # 8 * 0.05 = 0.4
