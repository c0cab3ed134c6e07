import json

import pytest

from nse_hw.errors import LatencyMiss, NseError
from nse_hw.latency import (
    LatencyTable,
    arch_components,
    join_counts,
    load_table,
    op_key,
    parse_key,
    predict,
    space_keys,
)
from nse_hw.space import Arch, parse_op

META = {"device": "host", "runtime": "litert", "threads": 1}


def _full_table(space, ms=1.0):
    t = LatencyTable(dict(META))
    for k in space_keys(space):
        t.set(k, ms=ms, source="measured", n=10)
    return t


def test_every_space_key_parses(nse27):
    keys = space_keys(nse27)
    assert len(keys) == len(set(keys))
    for k in keys:
        spec = parse_key(k)
        assert spec.kind in ("op", "head", "classifier", "add", "scale")
    assert op_key(parse_op("mb_k5_e6"), (56, 56, 24), 40, 2) == "mb_k5_e6|in=56x56x24|out=40|s=2"


def test_predict_counts_joins(tiny_space, tmp_path):
    table = _full_table(tiny_space)
    arch = tiny_space.arch([(tiny_space.pool[0], tiny_space.pool[1]), (), (tiny_space.pool[2],), ()])
    pred = predict(arch, table)
    # stem 1 + fixed 8->8 layer with identity (op + add + scale) 3 + layer(2 ops, no identity: + add + scale) 4
    # + skip 0 + layer(1 op, no identity) 1 + skip 0 + head 1 + classifier 1
    assert pred.total_ms == pytest.approx(11.0)
    assert [r[0] for r in pred.rows][:2] == ["stem", "layer0"]


def test_join_counts_by_hand():
    assert join_counts(1, True) == (1, 1) and join_counts(1, True, "sum") == (1, 0)
    assert join_counts(2, False) == (1, 1) and join_counts(0, True) == (0, 0)
    # in-op tables: each of the n identity-shape branches was timed with one add = the layer's n adds
    assert join_counts(1, True, adds_in_ops=True) == (0, 1) and join_counts(3, True, "sum", adds_in_ops=True) == (0, 0)
    assert join_counts(2, False, adds_in_ops=True) == (1, 1)  # no identity: the branches carry no add


def test_in_op_table_prices_identity_layers_without_add(tiny_space):
    table = _full_table(tiny_space)
    table.meta["residual_add"] = "in-op"
    for k in [k for k in table.entries if k.startswith("add|")]:
        table.entries[k]["ms"] = 100.0  # must not be charged in identity layers
    arch = tiny_space.arch([(tiny_space.pool[0],), (), (tiny_space.pool[2],), ()])
    # stem 1 + fixed 8->8 identity layer (op + scale, its add is in the op) 2 + layer 1 + skip 0 + layer 1 + skip 0
    # + head 1 + classifier 1
    assert predict(arch, table).total_ms == pytest.approx(7.0)
    two = tiny_space.arch([(tiny_space.pool[0], tiny_space.pool[1]), (), (tiny_space.pool[2],), ()])
    assert predict(two, table).total_ms == pytest.approx(7.0 + 1 + 100 + 1)  # no identity: 2nd op, add, scale
    fixed_add = next(k for k, _ in arch_components(arch)[1].keys if k.startswith("add|"))
    assert fixed_add not in [k for c in arch_components(arch, adds_in_ops=True) for k, _ in c.keys]


def test_miss_names_key_and_command(tiny_space):
    table = _full_table(tiny_space)
    arch = tiny_space.sample(__import__("numpy").random.default_rng(0))
    key = arch_components(arch)[0].keys[0][0]
    del table.entries[key]
    with pytest.raises(LatencyMiss, match=r"conv_k3\|in=32x32x3.*nse-hw profile"):
        predict(arch, table)


def test_save_load_and_calibration(tiny_space, tmp_path):
    table = _full_table(tiny_space, ms=2.0)
    table.meta["calibration"] = {"slope": 1.5, "intercept_ms": 1.0}
    table.save(tmp_path / "t.json")
    loaded = load_table(tmp_path / "t.json", runtime="litert")
    arch: Arch = tiny_space.arch([(tiny_space.pool[0],)] * 4)
    pred = predict(arch, loaded)
    assert pred.total_ms == pytest.approx(1.5 * pred.lut_sum_ms + 1.0)


@pytest.mark.parametrize("content,match", [("{oops", "not JSON"), (json.dumps({"format": "x/2"}), "format"),
                                           (json.dumps({"format": "nse-hw/latency-table/1"}), "corrupt")])
def test_bad_tables(tmp_path, content, match):
    (tmp_path / "t.json").write_text(content)
    with pytest.raises(NseError, match=match):
        load_table(tmp_path / "t.json")


def test_runtime_mismatch(tiny_space, tmp_path):
    _full_table(tiny_space).save(tmp_path / "t.json")
    with pytest.raises(NseError, match="runtime 'litert', not 'onnxruntime'"):
        load_table(tmp_path / "t.json", runtime="onnxruntime")
