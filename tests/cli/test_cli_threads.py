"""`--threads` on search, train and measure: the automatic default, recorded in the run, kept on --resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fixtures (FAKE tables, tests only)
from fixtures.search import tiny_budget_ms, tiny_setup  # noqa: E402

from nse_hw.cpushare import proc_start  # noqa: E402
from nse_hw.space import parse_layer  # noqa: E402
from nse_hw.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from nse_hw.train.threads import default_threads  # noqa: E402
from tests.fixtures.cli import assert_refused, invoke  # noqa: E402
from tests.fixtures.train import ONE_EPOCH  # noqa: E402

SEARCH = """\
space: tiny
seed: 0
data: {limit_train: 96, limit_heldout: 64, batch_size: 32, eval_batch_size: 64}
proxy: {resolution: 32, width_mult: 0.5}
train: {epochs_per_round: 1, steps_per_epoch: 2, lr: 0.05, arch_lr: 0.1, arch_every: 1}
latency: {lam: 2.0}
evolve: {subspace_size: 3, rounds: 1, samples: 4, extras: 1, bn_batches: 1, max_draws: 50000}
"""


@pytest.fixture
def arch_file(tmp_path, tiny_space):
    arch = tiny_space.arch([parse_layer(s) for s in ("mb_k3_e3", "mb_k5_e3", "rec_k5_e2", "mb_k3_e3_d2")])
    (tmp_path / "arch.json").write_text(arch.dumps())
    (tmp_path / "c.yaml").write_text(ONE_EPOCH)
    return tmp_path / "arch.json"


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("W ")]


def test_train_records_its_threads_and_resume_keeps_them(arch_file, tmp_path):
    before = torch.get_num_threads()
    run = tmp_path / "run"
    res = invoke("train", arch_file, "--config", tmp_path / "c.yaml", "--out", run, "--threads", 1)
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == before  # applied for the command only (it ran in this process)
    assert yaml.safe_load((run / "config.yaml").read_text())["threads"] == 1
    assert json.loads((run / "result.json").read_text())["threads"] == 1
    assert load_checkpoint(run / "last.pt")["config"]["threads"] == 1
    # a different count on --resume is ignored, with one warning; the run goes on with its own
    res = invoke("train", "--resume", run, "--threads", 2)
    assert res.exit_code == 0, res.output
    assert _warnings(res.output) == ["W nse_hw.cli: --resume keeps the run's 1 thread(s) so that it stays "
                                     "reproducible; ignoring --threads 2"]
    assert json.loads((run / "result.json").read_text())["threads"] == 1


def test_train_default_is_the_automatic_choice_and_old_runs_say_what_they_use(arch_file, tmp_path):
    run = tmp_path / "run"
    res = invoke("train", arch_file, "--config", tmp_path / "c.yaml", "--out", run)
    assert res.exit_code == 0, res.output
    auto = default_threads()
    assert yaml.safe_load((run / "config.yaml").read_text())["threads"] == auto
    assert json.loads((run / "result.json").read_text())["threads"] == auto
    # a run made before the count was recorded: no `threads` anywhere
    state = load_checkpoint(run / "last.pt")
    del state["config"]["threads"]
    save_checkpoint(state, run / "last.pt")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    del cfg["threads"]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = invoke("train", "--resume", run)
    assert res.exit_code == 0, res.output
    assert _warnings(res.output) == [f"W nse_hw.cli: the run recorded no thread count (it predates that); using "
                                     f"{auto} thread(s), the automatic choice"]
    assert json.loads((run / "result.json").read_text())["threads"] == auto


def test_search_records_its_threads_and_resume_keeps_them(tmp_path):
    cfg, table = tiny_setup(tmp_path, config=SEARCH)
    run = tmp_path / "search"
    res = invoke("search", "--latency", f"{tiny_budget_ms()}ms", "--table", table, "--config", cfg, "--out", run,
                 "--threads", 1)
    assert res.exit_code == 0, res.output
    assert json.loads((run / "run.json").read_text())["config"]["threads"] == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["threads"] == 1
    assert "1 torch thread(s) per process" in (run / "search.log").read_text()
    res = invoke("search", "--resume", run, "--threads", 2)
    assert res.exit_code == 0, res.output
    assert _warnings(res.output) == ["W nse_hw.cli: --resume keeps the run's 1 thread(s) so that it stays "
                                     "reproducible; ignoring --threads 2"]
    assert json.loads((run / "run.json").read_text())["config"]["threads"] == 1


@pytest.mark.parametrize("command", ["search", "train", "measure"])
def test_threads_must_be_positive(tmp_path, command):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    args = {"search": ["--latency", "80ms"], "train": [str(model)], "measure": [str(model)]}[command]
    assert_refused(invoke(command, *args, "--threads", 0), "must be >= 1, got 0")


def test_a_config_file_with_a_bad_thread_count_is_refused(arch_file, tmp_path):
    (tmp_path / "bad.yaml").write_text(ONE_EPOCH + "threads: 0\n")
    assert_refused(invoke("train", arch_file, "--config", tmp_path / "bad.yaml", "--out", tmp_path / "r"),
                   "threads must be an integer >= 1, got 0")
    assert not (tmp_path / "r").exists()


def test_measure_keeps_one_runtime_thread_by_default():
    res = invoke("measure", "--help")
    assert "--threads N" in res.output and "[default: 1]" in res.output


@pytest.fixture
def other_job(tmp_path, monkeypatch):
    """A live nse-hw job starting beside ours on a 2-core machine (a sleeping process with a pending entry),
    and ours allowed 2 threads whatever this test is pinned to."""
    from nse_hw import cpushare
    from nse_hw.train import threads

    monkeypatch.setenv(cpushare.ENV, str(tmp_path / "jobs"))
    monkeypatch.setattr(cpushare, "usable_cpus", lambda: frozenset({0, 1}))
    monkeypatch.setattr(threads, "default_threads", lambda: 2)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    reg = cpushare.Registry()
    reg.path.mkdir(parents=True)
    reg.write(cpushare.Job(pid=proc.pid, start=cpushare.proc_start(proc.pid), cpus=frozenset({0, 1}),
                           threads=None, command="train"))
    yield proc
    proc.kill()
    proc.wait()


def test_train_beside_another_job_takes_its_share_and_threads_overrides(arch_file, tmp_path, other_job):
    res = invoke("train", arch_file, "--config", tmp_path / "c.yaml", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    assert _warnings(res.output) == [f"W nse_hw.cli: 1 other nse-hw job(s) run on this process's cores (pid "
                                     f"{other_job.pid} (train, starting)): this run takes 1 of its 2 thread(s) "
                                     f"(recorded in the run; --threads 2 takes them all)"]
    assert json.loads((tmp_path / "a" / "result.json").read_text())["threads"] == 1
    res = invoke("train", arch_file, "--config", tmp_path / "c.yaml", "--out", tmp_path / "b", "--threads", 2)
    assert res.exit_code == 0, res.output
    assert not [w for w in _warnings(res.output) if "other nse-hw job" in w]  # (a busy-machine note may come)
    assert json.loads((tmp_path / "b" / "result.json").read_text())["threads"] == 2
    assert [p.name for p in (tmp_path / "jobs").glob("*.json")] == [f"{other_job.pid}-"
                                                                   f"{proc_start(other_job.pid)}.json"]


def test_search_beside_another_job_takes_its_share(tmp_path, other_job):
    cfg, table = tiny_setup(tmp_path, config=SEARCH)
    run = tmp_path / "search"
    res = invoke("search", "--latency", f"{tiny_budget_ms()}ms", "--table", table, "--config", cfg, "--out", run)
    assert res.exit_code == 0, res.output
    assert json.loads((run / "run.json").read_text())["config"]["threads"] == 1
    assert "1 torch thread(s) per process" in (run / "search.log").read_text()


SPY = """
import json, os, sys
sys.argv = ["nse-hw", "train", "a.json"]
seen = []
class Spy:  # looks at the registry when torch is first imported
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            from nse_hw.cpushare import Registry
            seen.append([j.threads for j in Registry().live() if j.pid == os.getpid()])
sys.meta_path.insert(0, Spy())
import nse_hw.cli
print(json.dumps(seen))
"""


def test_the_console_script_claims_its_place_before_torch_is_imported(tmp_path):
    env = {**os.environ, "NSE_HW_JOBS_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [[None]]  # one entry of its own, pending (no count chosen yet)
    assert not list(tmp_path.glob("*.json"))  # removed at exit


def test_train_beside_a_job_that_fills_the_cores_says_both_run_slower(arch_file, tmp_path, other_job):
    from nse_hw.cpushare import Job, Registry

    Registry().write(Job(pid=other_job.pid, start=proc_start(other_job.pid), cpus=frozenset({0, 1}), threads=2,
                         command="search"))  # it decided before we started: 2 threads on our 2 cores
    res = invoke("train", arch_file, "--config", tmp_path / "c.yaml", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    [note] = [w for w in _warnings(res.output) if "other nse-hw job" in w]
    assert f"(pid {other_job.pid} (search, 2 thread(s))): this run takes 1 of its 2" in note
    assert "their threads already fill the cores, so every job runs slower until one ends" in note
    assert json.loads((tmp_path / "a" / "result.json").read_text())["threads"] == 1


@pytest.mark.parametrize("argv,want", [
    (["/x/.venv/bin/nse-hw", "train", "a.json"], "train"),
    (["/x/.venv/bin/nse-hw", "-v", "search", "--latency", "80ms"], "search"),
    (["-m", "search"], "search"),                        # python -m nse_hw.cli, while the package imports
    (["/x/.venv/bin/nse-hw", "train", "--help"], None),
    (["/x/.venv/bin/nse-hw", "export", "run"], None),     # not a command that picks a default count
    (["/usr/bin/pytest", "train"], None),                 # another program importing nse_hw.cli claims nothing
    ([], None),
])
def test_console_command_names_only_search_and_train_console_runs(argv, want):
    from nse_hw.cli import console_command

    assert console_command(argv) == want
