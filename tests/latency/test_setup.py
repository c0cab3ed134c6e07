import pytest

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable
from nse_hw.latency.setup import SetupMap, fit_setup, setup_map, split_entry

MODEL = {"families": {"mb": {"features": ["const", "dense_mmacs", "mid_mb"], "coef": [0.1, 0.2, 1.0]}},
         "borrow": {"rec": "mb"}}


def test_split_entry_in_proportion_to_the_model_terms():
    # mb_k3_e1 at 4x4x8 -> 8: dense = 4*4*8*8 = 1024 MACs (no expand), mid = 4*4*8 values * 4 B = 512 B
    key = "mb_k3_e1|in=4x4x8|out=8|s=1"
    terms = {"overhead": 0.1, "compute": 0.2 * 1024e-6, "memory": 1.0 * 512e-6}
    total = sum(terms.values())
    parts = split_entry(key, 2.0, MODEL)
    assert parts == pytest.approx({p: 2.0 * v / total for p, v in terms.items()})
    assert sum(parts.values()) == pytest.approx(2.0)
    with pytest.raises(NseError, match="no 'head' family"):
        split_entry("head|in=7x7x8|out=16", 1.0, MODEL)


def test_fit_setup_forms_on_paper():
    parts = [{"compute": 1.0, "memory": 1.0, "overhead": 0.0}, {"compute": 2.0, "memory": 2.0, "overhead": 0.0}]
    const = fit_setup(parts, [1.0, 8.0], "constant")  # ratios 0.5 and 2: geometric mean 1
    assert const.coef["factor"] == pytest.approx(1.0) and const.fit_mape == pytest.approx(75.0)
    grid = [{"compute": c, "memory": m, "overhead": 1.0} for c, m in ((1, 2), (2, 1), (3, 3), (1, 5), (4, 1), (2, 2))]
    exact = fit_setup(grid, [2 * p["compute"] + 0.5 * p["memory"] + 0.25 for p in grid], "parts")
    assert exact.coef == pytest.approx({"compute": 2.0, "memory": 0.5, "overhead": 0.25})
    with pytest.raises(NseError, match="needs >= 6 networks"):
        fit_setup(grid[:5], [1.0] * 5, "parts")
    # + a weight-traffic term (ms per MB of parameters), which the constant and parts forms ignore
    wgrid = [{**p, "weights_mb": w} for p, w in zip(grid + grid[:2], (1, 2, 3, 4, 5, 6, 7, 8), strict=True)]
    ms = [2 * p["compute"] + 0.5 * p["memory"] + 0.25 + 0.1 * p["weights_mb"] for p in wgrid]
    both = fit_setup(wgrid, ms, "parts+weights")
    assert both.coef == pytest.approx({"compute": 2.0, "memory": 0.5, "overhead": 0.25, "weights_mb": 0.1})
    assert both.fit_mape == pytest.approx(0.0, abs=1e-9) and both.apply(wgrid[0]) == pytest.approx(ms[0])
    assert exact.apply(wgrid[0]) == pytest.approx(exact.apply(grid[0]))
    with pytest.raises(NseError, match="parts\\+weights setup map needs >= 8 networks"):
        fit_setup(wgrid[:7], ms[:7], "parts+weights")


def test_setups_are_asked_for_by_name():
    t = LatencyTable({"device": "p", "runtime": "tflite", "setup": {"name": "a"},
                      "setups": {"b": {"map": SetupMap("constant", {"factor": 0.8}, 3, 1.0).to_dict()}}})
    assert setup_map(t, "b").apply({"compute": 5.0, "memory": 5.0, "overhead": 0.0}) == pytest.approx(8.0)
    with pytest.raises(NseError, match="no map to setup 'c' .*setup 'a'; maps: b"):
        setup_map(t, "c")
