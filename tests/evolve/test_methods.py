"""Issue 8's methods on the tiny setup: the two NSE ablations as configs, random search at a time budget and with
NSE's final pick rule."""

import dataclasses
import json
import sys

import pytest
import yaml
from click.testing import CliRunner
from fixtures.search import TINY_CONFIG, tiny_budget_ms, tiny_setup

from nse_hw.cli import cli
from nse_hw.config import to_dict
from nse_hw.evolve import Candidate, load_search_config, pareto_front, preset_path
from nse_hw.evolve.ablation import ablation_config, weight_steps
from nse_hw.evolve.clock import Clock, budget_spent
from nse_hw.evolve.finish import pick_final
from nse_hw.space import load_space, parse_layer


def _search(tmp_path, name, config_text):
    (tmp_path / name).mkdir()
    cfg, table = tiny_setup(tmp_path / name, config=config_text)
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                   "--config", str(cfg), "--out", str(tmp_path / name / "run")])
    assert res.exit_code == 0, res.output
    return tmp_path / name / "run"


def test_ablations_keep_total_weight_steps_and_leave_the_shipped_config_alone():
    shipped = load_search_config(preset_path("default"))
    before = to_dict(shipped)
    for kind, k in (("fixed-subspace", 5), ("full-pool", 27)):
        abl = ablation_config(shipped, kind, pool=27)
        assert (abl.evolve.rounds, abl.train.epochs_per_round, abl.evolve.subspace_size) == (1, 6, k)  # 3 x 2
        assert weight_steps(abl, pool=27, steps_per_epoch=400) == weight_steps(shipped, pool=27, steps_per_epoch=400)
        assert abl.evolve.samples == shipped.evolve.samples and abl.train.lr == shipped.train.lr
    assert to_dict(shipped) == before
    paper = load_search_config(preset_path("default"))
    paper.evolve.rounds, paper.train.arch_warmup_epochs = None, 1  # rounds = (27 - 1) // (5 - 1) = 6
    abl = ablation_config(paper, "full-pool", pool=27)
    assert (abl.train.epochs_per_round, abl.train.arch_warmup_epochs) == (12, 6)
    with pytest.raises(ValueError, match="unknown ablation"):
        ablation_config(shipped, "half-pool", pool=27)


def _ablation_yaml(kind):
    cfg = ablation_config(load_search_config(None, **yaml.safe_load(TINY_CONFIG)), kind,
                          pool=len(load_space("tiny").pool))
    return yaml.safe_dump(to_dict(cfg))


def test_one_round_ablations_run_on_the_tiny_space(tmp_path):
    nse = _search(tmp_path, "nse", TINY_CONFIG)
    fixed = _search(tmp_path, "fixed", _ablation_yaml("fixed-subspace"))
    full = _search(tmp_path, "full", _ablation_yaml("full-pool"))
    pool = sorted(str(o) for o in load_space("tiny").pool)
    nse_r1 = json.loads((nse / "rounds/round-01.json").read_text())
    for run in (fixed, full):
        assert not (run / "rounds/round-02.json").exists()
        r1 = json.loads((run / "rounds/round-01.json").read_text())
        assert len(r1["epochs"]) == 4  # 2 rounds x 2 epochs in one round
        result = json.loads((run / "result.json").read_text())
        assert [r["round"] for r in result["rounds"]] == [1] and result["predicted_ms"] <= tiny_budget_ms()
        assert result["search_s"]["cpu"] > 0 and result["search_s"]["since"] == "start"
        subs = r1["subspaces"]
        for cur, que, ret in zip(subs["current"], subs["queue"], subs["retired"], strict=True):
            assert sorted(cur + que + ret) == pool
        for c in r1["scored"]:
            [parse_layer(x) for x in c["layers"]]
    # the fixed subspace is the one NSE draws for its first round; the full pool has every feasible op, no queue
    fixed_subs = json.loads((fixed / "rounds/round-01.json").read_text())["subspaces"]
    assert fixed_subs["current"] == nse_r1["subspaces"]["current"]
    full_subs = json.loads((full / "rounds/round-01.json").read_text())["subspaces"]
    assert all(not q for q in full_subs["queue"])
    assert all(len(c) == len(pool) - len(r) for c, r in zip(full_subs["current"], full_subs["retired"], strict=True))


def test_budget_spent():
    assert not budget_spent(0.0, None, 1, limit=2) and budget_spent(0.0, None, 2, limit=2)
    assert not budget_spent(99.0, 10.0, 0, limit=2)  # at least one arch, whatever the clock says
    assert not budget_spent(9.9, 10.0, 5, limit=2)  # the count limit does not apply to a time budget
    assert budget_spent(10.0, 10.0, 1, limit=2)
    assert Clock().seconds("cpu") >= 0
    with pytest.raises(ValueError, match="unknown clock"):
        Clock().seconds("gpu")


def test_a_resumed_clock_adds_the_seconds_its_checkpoint_recorded():
    fresh = Clock()
    assert fresh.resumed(None) is fresh and fresh.spent()["resumes"] == 0
    later = fresh.resumed({"spent": {"wall": 100.0, "cpu": 40.0, "since": "start", "resumes": 1}})
    assert 40.0 <= later.seconds("cpu") < 40.0 + 5 and 100.0 <= later.seconds("wall") < 100.0 + 5
    assert later.spent()["since"] == "start" and later.spent()["resumes"] == 2
    old = fresh.resumed({"state": {}})  # a checkpoint of an older version: its time is unknown, and said so
    assert old.seconds("cpu") < 5 and old.spent()["since"] == "resume" and old.spent()["resumes"] == 1


def test_pick_final_is_nse_rule():
    scored = [Candidate([], 5.0, 0.50), Candidate([], 9.0, 0.46), Candidate([], 11.0, 0.60)]
    front = [scored[i] for i in pareto_front(scored)]
    assert pick_final(front, scored, 10.0, tie_se=0.0, n_images=100)[0].ms == 5.0
    cand, pick = pick_final(front, scored, 10.0, tie_se=1.0, n_images=100)  # SE 0.05: 0.46 ties 0.50
    assert cand.ms == 9.0 and pick["band"] == pytest.approx(0.05) and pick["most_accurate_pareto"]["ms"] == 5.0


def test_random_search_time_budget_and_nse_pick(tmp_path):
    text = TINY_CONFIG.replace("baseline: {archs: 2, steps: 3}",
                               "baseline: {archs: 2, steps: 3, time_s: 1.0e-6, pick: nse}")
    cfg, table = tiny_setup(tmp_path, config=text.replace("evolve: {", "evolve: {final_tie_se: 1.0, "))
    out = tmp_path / "rand"
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                   "--config", str(cfg), "--out", str(out), "--baseline", "random"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "result.json").read_text())
    assert result["archs"] == 1  # a budget spent at once still trains one arch
    assert result["time_budget"]["clock"] == "cpu" and result["time_budget"]["spent"] >= 1.0e-6
    assert result["pick"]["tie_se"] == 1.0 and result["pick"]["scored_images"] == 96
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_CONFIG.replace("baseline: {archs: 2, steps: 3}", "baseline: {time_s: -1}"))
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                   "--config", str(bad), "--out", str(tmp_path / "bad"), "--baseline", "random"])
    assert res.exit_code == 2 and "baseline.time_s" in res.output


def test_config_switches_default_to_the_old_behaviour():
    cfg = load_search_config(preset_path("default"))
    assert (cfg.baseline.time_s, cfg.baseline.pick) == (None, "best")
    assert dataclasses.asdict(cfg.baseline)["clock"] == "cpu"


def test_time_budgeted_random_search_draws_new_archs_batch_after_batch(tmp_path, monkeypatch):
    # stand-in for a clock: stop after 5 archs, so 3 batches of 2 new archs are drawn (no arch twice)
    module = sys.modules["nse_hw.evolve.random_search"]  # (the package exports a function of the same name)
    monkeypatch.setattr(module, "budget_spent", lambda s, b, done, *, limit: done >= 5)
    cfg, table = tiny_setup(tmp_path, config=TINY_CONFIG.replace("baseline: {archs: 2, steps: 3}",
                                                                  "baseline: {archs: 2, steps: 3, time_s: 60}"))
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
                                   "--config", str(cfg), "--out", str(tmp_path / "r"), "--baseline", "random"])
    assert res.exit_code == 0, res.output
    scored = json.loads((tmp_path / "r" / "baseline.json").read_text())["scored"]
    assert len(scored) == 5 and len({tuple(c["layers"]) for c in scored}) == 5
    assert json.loads((tmp_path / "r" / "result.json").read_text())["proxy_heldout_top1"] == pytest.approx(
        max(c["acc"] for c in scored), abs=1e-4)  # pick 'best' (the default)
    # stopped after 3 (mid-batch, as a kill would) and resumed to 5: the same 5 archs and scores, one resume
    monkeypatch.setattr(module, "budget_spent", lambda s, b, done, *, limit: done >= 3)
    args = ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table), "--config", str(cfg), "--out",
            str(tmp_path / "k"), "--baseline", "random"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    monkeypatch.setattr(module, "budget_spent", lambda s, b, done, *, limit: done >= 5)
    res = CliRunner().invoke(cli, ["search", "--resume", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "k" / "baseline.json").read_text())["scored"] == scored
    spent = json.loads((tmp_path / "k" / "result.json").read_text())["search_s"]
    assert spent["resumes"] == 1 and spent["since"] == "start"
