"""kill -9 of `nse-hw search` at its dangerous moments, then --resume: the uninterrupted result, no debris."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.search import tiny_budget_ms, tiny_setup

from nse_hw.space import load_arch

BIN = Path(sys.executable).parent
CRASH = Path(__file__).resolve().parents[1] / "fixtures" / "crash.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _args(tmp_path, out):
    cfg, table = tiny_setup(tmp_path)
    return ["search", "--latency", f"{tiny_budget_ms()}ms", "--table", str(table), "--config", str(cfg),
            "--out", str(out), "--threads", "1"]


def _run(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    res = _run(BIN / "nse-hw", *_args(tmp, tmp / "run"))
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp / "run"


def _debris(run: Path) -> list[Path]:
    return [p for p in run.rglob("*") if p.name.endswith(".tmp") or p.name == ".nse-hw.lock"]


@pytest.mark.slow
@pytest.mark.parametrize("when,name,n", [
    ("mid-write", "checkpoint.pt", 2),                  # temp checkpoint on disk, not renamed
    ("after-write", "round-01.json", 1),                # between the round file and the checkpoint
    ("call", "nse_hw.evolve.scoring:top1", 3),          # during round 1's scoring
    ("after-write", "checkpoint.pt", 6),                # between the last checkpoint and the plots
])
def test_kill_then_resume_gives_the_uninterrupted_result(tmp_path, reference, when, name, n):
    out = tmp_path / "run"
    killed = _run(sys.executable, CRASH, when, name, n, "--", *_args(tmp_path, out))
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (out / "arch.json").exists()
    res = _run(BIN / "nse-hw", "search", "--resume", out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert load_arch(out / "arch.json") == load_arch(reference / "arch.json")
    ref, got = ({k: v for k, v in json.loads((d / "result.json").read_text()).items()
                 if k not in ("table", "search_s")} for d in (reference, out))
    assert got == ref  # everything but where the (identical) table file lives and the time the search took
    for r in ("round-01.json", "round-02.json"):
        assert json.loads((out / "rounds" / r).read_text()) == json.loads((reference / "rounds" / r).read_text())
    assert _debris(out) == []
    # the plots describe every round, even when the kill came after the last checkpoint and before plotting
    assert (out / "plots" / "pareto.png").stat().st_mtime >= (out / "rounds" / "round-02.json").stat().st_mtime


@pytest.fixture(scope="module")
def random_reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref-random")
    res = _run(BIN / "nse-hw", *_args(tmp, tmp / "run"), "--baseline", "random")
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp / "run"


@pytest.mark.slow
@pytest.mark.parametrize("when,name,n", [
    ("mid-write", "checkpoint.pt", 2),                              # the 2nd arch scored, its checkpoint half-written
    ("call", "nse_hw.evolve.random_search:train_and_score", 2),     # while the 2nd arch trains
])
def test_kill_then_resume_a_random_search_gives_the_uninterrupted_result(tmp_path, random_reference, when, name, n):
    out = tmp_path / "run"
    killed = _run(sys.executable, CRASH, when, name, n, "--", *_args(tmp_path, out), "--baseline", "random")
    assert killed.returncode == -9, killed.stderr[-2000:]
    res = _run(BIN / "nse-hw", "search", "--resume", out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resuming after 1 scored architectures" in (out / "search.log").read_text()
    assert load_arch(out / "arch.json") == load_arch(random_reference / "arch.json")
    for f in ("baseline.json", "result.json"):
        ref, got = ({k: v for k, v in json.loads((d / f).read_text()).items() if k not in ("table", "search_s")}
                    for d in (random_reference, out))
        assert got == ref, f
    assert json.loads((out / "result.json").read_text())["search_s"]["resumes"] == 1
    assert _debris(out) == []
