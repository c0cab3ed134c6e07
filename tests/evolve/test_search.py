"""End-to-end NSE runs on the tiny space (seconds): outputs, NSE bookkeeping, resume after kill -9, torchrun."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fixtures.search import tiny_budget_ms, tiny_setup

from nse_hw.cli import cli
from nse_hw.evolve import Candidate, pareto_front
from nse_hw.evolve.finish import pick_final, rerank_candidates
from nse_hw.latency import load_table, predict
from nse_hw.space import load_arch, load_space, parse_layer
from nse_hw.train.checkpoint import load_checkpoint

VENV_BIN = Path(sys.executable).parent


def _search(tmp_path, out, *extra):
    cfg, table = tiny_setup(tmp_path)
    args = ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table), "--config", str(cfg),
            "--out", str(out), *extra]
    return CliRunner().invoke(cli, args), table


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    res, table = _search(tmp, tmp / "run")
    assert res.exit_code == 0, res.output
    return tmp / "run", table, res.output


def test_run_directory_and_final_arch(tiny_run):
    run, table, output = tiny_run
    for name in ("run.json", "config.yaml", "checkpoint.pt", "arch.json", "result.json", "search.log",
                 "rounds/round-01.json", "rounds/round-02.json", "plots/pareto.png", "plots/subspaces.png",
                 "plots/latency.png"):
        assert (run / name).is_file(), name
    arch = load_arch(run / "arch.json")
    budget = tiny_budget_ms()
    assert arch.input == (32, 32, 3) and arch.classes == 10  # the deployment arch, not the 1-channel proxy
    pred = predict(arch, load_table(table)).total_ms
    assert pred <= budget and arch.meta["predicted_ms"] == pytest.approx(pred, abs=1e-3)
    last = json.loads((run / "rounds/round-02.json").read_text())
    best = max((c for c in last["front"] if c["ms"] <= budget), key=lambda c: c["acc"])
    assert arch.meta["proxy_heldout_top1"] == pytest.approx(best["acc"], abs=1e-4)
    assert str(run / "arch.json") in output
    assert "round 2" in (run / "search.log").read_text()
    res = CliRunner().invoke(cli, ["latency", "predict", str(run / "arch.json"), "--table", str(table)])
    assert res.exit_code == 0 and "total" in res.output
    spent, ckpt = json.loads((run / "result.json").read_text())["search_s"], load_checkpoint(run / "checkpoint.pt")
    assert spent["since"] == "start" and spent["resumes"] == 0
    assert 0 < ckpt["spent"]["cpu"] <= spent["cpu"]  # the checkpoint carries the time a resumed run adds to its own


def test_rounds_keep_retire_refill(tiny_run):
    run, _, _ = tiny_run
    space = load_space("tiny")
    r1, r2 = (json.loads((run / f"rounds/round-0{i}.json").read_text()) for i in (1, 2))
    budget = r1["budget_ms"]
    k = 3
    for j, (sub, nxt) in enumerate(zip(r1["subspaces"]["current"], r2["subspaces"]["current"], strict=True)):
        kept = r1["kept"][j]
        assert set(kept) <= set(sub) and len(sub) == k
        front_ops = {o for c in r1["front"] if c["kind"] != "extra" for o in c["layers"][j].split("+")} - {"skip"}
        assert set(kept) == front_ops
        queue = r1["subspaces"]["queue"][j]
        assert nxt == [o for o in sub if o in kept] + queue[: k - len(kept)]  # kept first, then the queue's head
        retired = set(r1["subspaces"]["retired"][j])
        assert not retired & (set(sub) | set(queue))
        assert sorted(retired | set(sub) | set(queue)) == sorted(str(o) for o in space.pool)
    # round 2's own gain, paired: its best new in-budget arch vs round 1's front re-scored in round 2's supernet
    scored2 = [c for c in r2["scored"] if c["ms"] <= budget]
    new = max(c["acc"] for c in scored2 if c["kind"] != "previous")
    old = max(c["acc"] for c in scored2 if c["kind"] == "previous")
    assert (r2["best_new_acc"], r2["best_previous_acc"]) == pytest.approx((new, old), abs=1e-5)  # rounded there
    assert r2["paired_gain"] == pytest.approx(new - old, abs=2e-5)
    assert r1["best_previous_acc"] is None and r1["paired_gain"] is None  # round 1 has no front before it
    result = json.loads((run / "result.json").read_text())
    assert result["rounds"][1]["paired_gain"] == r2["paired_gain"]
    for c in r1["scored"]:
        lo, hi = (0.85, 1.0) if c["kind"] == "window" else (0.5, 0.85)
        if c["kind"] != "previous":
            assert lo * budget - 1e-6 <= c["ms"] <= hi * budget + 1e-6
        for layer in c["layers"]:
            parse_layer(layer)
    assert {c["kind"] for c in r2["scored"]} >= {"window", "previous"}  # last front re-scored


def test_random_baseline_writes_the_same_outputs(tmp_path):
    res, table = _search(tmp_path, tmp_path / "rand", "--baseline", "random")
    assert res.exit_code == 0, res.output
    arch = load_arch(tmp_path / "rand" / "arch.json")
    assert arch.meta["method"] == "random"
    scored = json.loads((tmp_path / "rand" / "baseline.json").read_text())["scored"]
    assert len(scored) == 2 and all(0.85 * tiny_budget_ms() <= c["ms"] <= tiny_budget_ms() for c in scored)
    assert max(c["acc"] for c in scored) == pytest.approx(arch.meta["proxy_heldout_top1"], abs=1e-4)


def _with_rerank(run: Path, n: int) -> None:
    """Set evolve.rerank in a run's recorded config (both copies, so --resume accepts them)."""
    meta = json.loads((run / "run.json").read_text())
    meta["config"]["evolve"]["rerank"] = n
    (run / "run.json").write_text(json.dumps(meta))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["evolve"]["rerank"] = n
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_rerank_picks_by_the_short_score_and_resuming_a_finished_run_reranks_it(tmp_path, tiny_run):
    cfg, _ = tiny_setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("bn_batches: 1,", "bn_batches: 1, rerank: 3,"))
    res = CliRunner().invoke(cli, ["search", "--latency", f"{tiny_budget_ms()}ms", "--table",
                                   str(tmp_path / "fake-tiny.json"), "--config", str(cfg), "--out",
                                   str(tmp_path / "rr")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "rr" / "result.json").read_text())
    # the rounds are the plain run's (the re-rank comes after them); it re-ranks that run's 3 best in-budget archs
    last = json.loads((tiny_run[0] / "rounds/round-02.json").read_text())
    assert json.loads((tmp_path / "rr" / "rounds/round-02.json").read_text())["scored"] == last["scored"]
    top = rerank_candidates([Candidate.from_dict(c) for c in last["scored"]], tiny_budget_ms(), 3)
    assert len(top) == 3 and [r["layers"] for r in result["rerank"]] == [c.to_dict()["layers"] for c in top]
    assert [r["supernet_acc"] for r in result["rerank"]] == [round(c.acc, 5) for c in top]
    # the final rule on the short scores (scored on all 96 held-out images)
    short = [Candidate(c.choices, c.ms, r["short_acc"], kind="rerank")
             for c, r in zip(top, result["rerank"], strict=True)]
    want, _ = pick_final([short[i] for i in pareto_front(short)], short, tiny_budget_ms(), tie_se=0.0,
                         n_images=96)
    assert result["layers"] == want.to_dict()["layers"]
    assert result["proxy_heldout_top1"] == pytest.approx(want.acc, abs=1e-5)
    # the same re-rank applied after the fact: a finished run, its config edited, resumed
    shutil.copytree(tiny_run[0], tmp_path / "post")
    _with_rerank(tmp_path / "post", 3)
    res = CliRunner().invoke(cli, ["search", "--resume", str(tmp_path / "post")])
    assert res.exit_code == 0, res.output
    post = json.loads((tmp_path / "post" / "result.json").read_text())
    assert post["rerank"] == result["rerank"] and post["layers"] == result["layers"]


def _cmd(tmp_path, out):
    cfg, table = tiny_setup(tmp_path)
    return [str(VENV_BIN / "nse-hw"), "search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table),
            "--config", str(cfg), "--out", str(out)]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
def test_resume_after_sigkill_reaches_the_same_result(tmp_path, tiny_run):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(tmp_path, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "arch.json").exists()
    shutil.copy(out / "checkpoint.pt", tmp_path / "first.pt")
    first = load_checkpoint(tmp_path / "first.pt")["state"]
    assert first["round"] == 0 and first["epoch"] == 1  # killed inside round 1, after its first epoch
    res = subprocess.run([str(VENV_BIN / "nse-hw"), "search", "--resume", str(out)], capture_output=True,
                         text=True, env=_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming at round 1, epoch 1" in (out / "search.log").read_text()
    # the seconds before the kill (to its last checkpoint) count: the result is one run's time, resumed once
    spent = json.loads((out / "result.json").read_text())["search_s"]
    before = load_checkpoint(tmp_path / "first.pt")["spent"]
    assert spent["since"] == "start" and spent["resumes"] == 1 and spent["cpu"] > before["cpu"] > 0
    # every random stream is derived from (seed, round, epoch): the resumed run finds what the uninterrupted one did
    assert load_arch(out / "arch.json") == load_arch(tiny_run[0] / "arch.json")


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    out = tmp_path / "ddp"
    cmd = [str(VENV_BIN / "torchrun"), "--nproc_per_node=2", "--standalone", "--no-python", *_cmd(tmp_path, out)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    arch = load_arch(out / "arch.json")
    assert arch.meta["predicted_ms"] <= tiny_budget_ms()
    assert res.stdout.count("arch.json") == 1  # only rank 0 reports (and writes)
    last = json.loads((out / "rounds/round-02.json").read_text())
    accs = [c["acc"] for c in last["scored"]]
    assert all(0.0 <= a <= 1.0 for a in accs) and len(set(accs)) > 1  # every candidate scored by some rank
