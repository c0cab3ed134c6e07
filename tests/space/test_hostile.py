"""Hostile arch files and op tokens (issue 11): one line naming the problem, exit 2, never a traceback."""

from __future__ import annotations

import json

import pytest

from nse_hw.jsonio import nesting_depth, parse_json, read_json
from nse_hw.space import Op, format_op, load_arch, parse_op
from nse_hw.space.grammar import BOUNDS
from tests.fixtures.cli import assert_refused, invoke

GOOD = {"format": "nse-hw/arch/1", "input": [224, 224, 3], "classes": 1000,
        "stem": {"op": "conv_k3", "out": 32, "stride": 2},
        "layers": [{"ops": "mb_k3_e1", "out": 16, "stride": 1}, {"ops": "mb_k5_e3", "out": 24, "stride": 2}],
        "head": {"out": 1280}}


def predict(tmp_path, body: str | bytes):
    path = tmp_path / "a.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return invoke("latency", "predict", path, "--table", "host-litert")


def edited(**changes) -> str:
    d = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = d
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(key) if key.isdigit() else key] = value
    return json.dumps(d)


def test_deeply_nested_json_is_one_line(tmp_path):
    assert_refused(predict(tmp_path, "[" * 100_000 + "]" * 100_000), "nests lists/objects too deeply")
    assert_refused(predict(tmp_path, '{"a": ' * 50 + "1" + "}" * 50), "nests lists/objects too deeply")


def test_non_utf8_json_is_one_line(tmp_path):
    assert_refused(predict(tmp_path, b'{"format": "\xff\xfe"}'), "is not UTF-8 text (byte 0xff at offset 12)")


def test_nan_is_not_json(tmp_path):
    assert_refused(predict(tmp_path, edited(classes=0).replace('"classes": 0', '"classes": NaN')), "NaN")


def test_huge_literal_is_not_a_width(tmp_path):
    assert_refused(predict(tmp_path, edited(classes=7).replace('"classes": 7', '"classes": 1e400')),
                   "arch field classes must be an integer, got Infinity")


@pytest.mark.parametrize("change, text", [
    ({"stem__stride": 0}, "stem stride must be 1 or 2, got 0"),
    ({"stem__stride": -2}, "stem stride must be 1 or 2, got -2"),
    ({"stem__out": 0}, "stem out must be >= 1, got 0"),
    ({"layers__1__out": -4}, "out >= 1"),
    ({"head__out": 0}, "head out must be >= 1"),
    ({"classes": 0}, "classes must be >= 1, got 0"),
    ({"input": [2, 2, 3]}, "input 2x2 is smaller than the network's total stride 4"),
    ({"input": "224"}, "arch field input must be a list"),
    ({"layers__1__out": 3.7}, "arch field layers[1].out must be an integer, got 3.7"),
    ({"layers__1__out": 1e400}, "Infinity is not a JSON number"),
    ({"classes": True}, "arch field classes must be an integer, got true"),
    ({"layers__0": "mb_k3_e1"}, "arch field layers[0] must be an object"),
    ({"meta": "x"}, "field meta must be an object"),
    ({"layers__1__ops": "mb_k999_e1"}, "k=999 in 'mb' op is out of range 1..15"),
    ({"layers__1__ops": "mb_k3_e100000"}, "e=100000 in 'mb' op is out of range 1..16"),
    ({"layers__1__ops": "mb_k3_e6_d99"}, "d=99 in 'mb' op is out of range 1..8"),
])
def test_arch_semantics_are_refused(tmp_path, change, text):
    assert_refused(predict(tmp_path, edited(**change)), text)


def test_read_json_limits(tmp_path):
    path = tmp_path / "big.json"
    path.write_text("[" + "0," * 100 + "0]")
    with pytest.raises(ValueError, match="over the 0 MiB limit"):
        read_json(path, what="thing", max_bytes=10)
    assert nesting_depth([[1], {"a": [[]]}]) == 4 and nesting_depth(3) == 0
    assert parse_json(b'{"a": [1]}', what="x") == {"a": [1]}


def test_grammar_bounds_accept_every_shipped_op_and_round_trip():
    shipped = set()
    for path in ("configs/archs/mobilenetv2-1.0-224.json", "configs/archs/mnasnet-a1-224.json"):
        arch = load_arch(path)
        shipped |= {op for spec in arch.layers for op in spec.ops} | {arch.stem}
    edges = {Op("mb", k, e, d, True, True) for k in BOUNDS["k"] for e in BOUNDS["e"] for d in BOUNDS["d"]
             if k % 2} | {Op("rec", 15, 16)}
    for op in shipped | edges:
        assert parse_op(format_op(op)) == op


@pytest.mark.parametrize("token", ["mb_k17_e1", "rec_k3_e17", "conv_k99", "mb_k3_e1_d9"])
def test_grammar_bounds_refuse(token):
    with pytest.raises(ValueError, match="out of range"):
        parse_op(token)
