"""Successive halving (evolve.halving): the plan and the reserve on paper; NSE and random search end to end."""

import json

import pytest
from click.testing import CliRunner
from fixtures.search import TINY_CONFIG, tiny_budget_ms, tiny_setup

from nse_hw.cli import cli
from nse_hw.evolve import Candidate
from nse_hw.evolve.finish import rerank_candidates
from nse_hw.evolve.random_search import halving_reserve
from nse_hw.evolve.standalone import halving_plan
from nse_hw.space import format_layer

HALVING = TINY_CONFIG.replace("bn_batches: 1,", "bn_batches: 1, halving: [[3, 4], [1, 8]],")


def test_halving_plan_narrows_to_what_there_is():
    assert halving_plan(20, [[16, 150], [4, 600]]) == [(16, 150), (4, 600)]
    assert halving_plan(10, [[16, 150], [4, 600]]) == [(10, 150), (4, 600)]  # fewer candidates than the rung
    assert halving_plan(3, [[16, 150], [4, 600]]) == [(3, 150), (3, 600)]  # the same 3, trained longer
    with pytest.raises(ValueError, match="rung 2"):
        halving_plan(3, [[16, 150], [4, 100]])  # the same 3, trained shorter: a wasted rung


def test_halving_reserve_scales_the_first_rung_by_steps():
    # 10 s an arch at 150 steps; 4 archs x 600 steps later = 4 x 40 s
    assert halving_reserve(10.0, [[16, 150], [4, 600]]) == pytest.approx(160.0)
    assert halving_reserve(10.0, [[16, 150]]) == 0.0


def _run(tmp_path, config, *extra):
    cfg, table = tiny_setup(tmp_path, config=config)
    out = tmp_path / "r"
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                   "--config", str(cfg), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return out, json.loads((out / "result.json").read_text())


def test_nse_halving_ranks_the_last_rounds_best_and_picks_the_lowest_loss(tmp_path):
    out, result = _run(tmp_path, HALVING)
    rungs = result["halving"]
    first, second = [r for r in rungs if r["rung"] == 1], [r for r in rungs if r["rung"] == 2]
    assert [r["steps"] for r in first] == [4] * 3 and [r["steps"] for r in second] == [8]
    last = json.loads((out / "rounds/round-02.json").read_text())["scored"]
    top = rerank_candidates([Candidate.from_dict(c) for c in last], tiny_budget_ms(), 3)
    assert [r["layers"] for r in first] == [[format_layer(x) for x in c.choices] for c in top]
    best_first = min(first, key=lambda r: (r["nll"], -r["ms"]))
    assert second[0]["layers"] == best_first["layers"] == result["layers"]
    assert result["proxy_heldout_nll"] == pytest.approx(second[0]["nll"], abs=1e-5)
    assert "proxy_heldout_top1" not in result and result["pick"]["rule"].startswith("lowest held-out NLL")
    assert result["predicted_ms"] <= tiny_budget_ms()


def test_random_search_with_the_halving_scorer(tmp_path):
    config = HALVING.replace("baseline: {archs: 2, steps: 3}", "baseline: {archs: 3, steps: 3, halving: true}")
    out, result = _run(tmp_path, config, "--baseline", "random")
    scored = json.loads((out / "baseline.json").read_text())["scored"]
    assert len(scored) == 3 and all(c["acc"] < 0 for c in scored)  # -NLL of the first rung
    assert [(r["rung"], r["steps"]) for r in result["halving"]] == [(2, 8)]  # the later rung, numbered as NSE's
    best = max(scored, key=lambda c: (c["acc"], c["ms"]))
    assert result["halving"][0]["layers"] == best["layers"] == result["layers"]


def test_a_time_budgeted_random_search_counts_its_later_rungs(tmp_path):
    # the budget is spent at the first draw; the later rung still runs, and the search's time includes it
    config = HALVING.replace("baseline: {archs: 2, steps: 3}", "baseline: {archs: 2, steps: 3, halving: true, "
                                                               "time_s: 1.0e-6}")
    _, result = _run(tmp_path, config, "--baseline", "random")
    tb = result["time_budget"]
    assert result["archs"] == 1 and tb["spent"] == result["search_s"]["cpu"] > tb["drawing_stopped_at"] > 0


def test_bad_halving_configs_are_refused(tmp_path):
    for text, msg in ((HALVING.replace("[[3, 4], [1, 8]]", "[[3]]"), "evolve.halving must be"),
                      (HALVING.replace("halving:", "rerank: 2, halving:"), "exclude each other"),
                      (TINY_CONFIG.replace("baseline: {archs: 2, steps: 3}", "baseline: {halving: true}"),
                       "baseline.halving needs evolve.halving")):
        cfg, table = tiny_setup(tmp_path, config=text)
        res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                       "--config", str(cfg), "--out", str(tmp_path / "bad"), "--baseline", "random"])
        assert res.exit_code == 2 and msg in res.output, res.output
