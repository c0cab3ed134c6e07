"""kill -9 of `nse-hw train` at its dangerous moments, then --resume: the uninterrupted run's files, no debris."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nse_hw.train.report import read_metrics
from nse_hw.train.trainer import read_train_checkpoint

BIN = Path(sys.executable).parent
CRASH = Path(__file__).resolve().parents[1] / "fixtures" / "crash.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _run(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, timeout=300)


def _args(files, out):
    return ["train", files[0], "--config", files[1], "--epochs", "3", "--threads", "1", "--out", out]


def _same_weights(a: Path, b: Path) -> bool:
    sa, sb = read_train_checkpoint(a), read_train_checkpoint(b)
    return sa["epoch"] == sb["epoch"] and all(torch.equal(sa["model"][k], sb["model"][k]) for k in sb["model"])


@pytest.mark.slow
@pytest.mark.parametrize("when,name,n", [
    ("mid-write", "last.pt", 2),     # epoch 2's checkpoint half-written
    ("after-write", "best.pt", 2),   # an improving epoch: best.pt written, last.pt not yet
])
def test_kill_then_resume_gives_the_uninterrupted_result(tiny_files, tmp_path, when, name, n):
    ref = tmp_path / "ref"
    assert _run(BIN / "nse-hw", *_args(tiny_files, ref)).returncode == 0
    out = tmp_path / "run"
    killed = _run(sys.executable, CRASH, when, name, n, "--", *_args(tiny_files, out))
    assert killed.returncode == -9, killed.stderr[-2000:]
    res = _run(BIN / "nse-hw", "train", "--resume", out)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _same_weights(out / "last.pt", ref / "last.pt") and _same_weights(out / "best.pt", ref / "best.pt")
    got, want = (json.loads((d / "result.json").read_text()) for d in (out, ref))
    assert {k: got[k] for k in ("test_top1", "best_epoch", "best_val_top1")} == \
        {k: want[k] for k in ("test_top1", "best_epoch", "best_val_top1")}
    assert [r["epoch"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp files, no lock


def test_a_run_that_died_before_its_first_checkpoint_can_be_started_again(tiny_files, tmp_path):
    from nse_hw.errors import NseError
    from nse_hw.train.rundir import check_run_dir

    run = tmp_path / "run"
    run.mkdir()
    for name in ("arch.json", "proxy_arch.json", "config.yaml", ".last.pt.ab12cd34.tmp"):
        (run / name).write_text("{}")
    with pytest.raises(NseError, match="ended before its first epoch finished; start it again without --resume"):
        check_run_dir(run, resume=True)
    check_run_dir(run, resume=False)  # a restart is allowed
    (run / "notes.txt").write_text("mine")
    with pytest.raises(NseError, match="not empty"):
        check_run_dir(run, resume=False)  # anything else is the user's: refuse
