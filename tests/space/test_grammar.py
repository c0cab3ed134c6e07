import pytest
from hypothesis import given
from hypothesis import strategies as st

from nse_hw.space import Op, format_layer, format_op, parse_layer, parse_op

odd = st.integers(0, 7).map(lambda i: 2 * i + 1)
mb_ops = st.builds(lambda k, e, d, se, hs: Op("mb", k, e, d, se, hs), odd, st.integers(1, 8),
                   st.integers(1, 4), st.booleans(), st.booleans())
rec_ops = st.builds(lambda k, e: Op("rec", k, e), odd, st.integers(1, 8))
ops = st.one_of(mb_ops, rec_ops)
layers = st.lists(ops, max_size=4, unique=True).map(tuple)


@given(ops)
def test_op_round_trip(op):
    assert parse_op(format_op(op)) == op


@given(layers)
def test_layer_round_trip(layer):
    text = format_layer(layer)
    assert parse_layer(text) == layer
    assert format_layer(parse_layer(text)) == text


@pytest.mark.parametrize("text", ["mb_k3_e6", "mb_k3_e6_d2", "mb_k5_e3_se_hs", "mb_k7_e1_hs", "rec_k5_e2",
                                  "mb_k3_e6+mb_k7_e3", "skip", "mb_k11_e6_d3_se"])
def test_known_strings_are_canonical(text):
    assert format_layer(parse_layer(text)) == text


def test_parse_fields():
    assert parse_op("mb_k5_e3_d2_se") == Op("mb", 5, 3, 2, True, False)
    assert parse_op("rec_k7_e4") == Op("rec", 7, 4)
    assert parse_layer("skip") == ()


@pytest.mark.parametrize("bad", ["mb_k3", "mb_k4_e6", "mb_k3_e6_d1", "mb_k3_e6_hs_se", "MB_k3_e6", "conv3",
                                 "mb_k03_e6", "rec_k5_e2_se", "mb_k3_e0", "foo", ""])
def test_unknown_tokens_are_named(bad):
    with pytest.raises(ValueError, match="op token|kernel|expand|layer"):
        parse_layer(bad)


def test_error_names_the_token():
    with pytest.raises(ValueError, match="'mb_k3_e6_x'"):
        parse_layer("mb_k3_e1+mb_k3_e6_x")


@pytest.mark.parametrize("bad", ["skip+mb_k3_e6", "mb_k3_e6+mb_k3_e6", "conv_k3"])
def test_illegal_layers(bad):
    with pytest.raises(ValueError):
        parse_layer(bad)
