"""Threads per process, the bounded wait for other ranks, and what a rank prints when another one froze or died."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist

from nse_hw.train import dist
from nse_hw.train.threads import (
    auto_threads,
    busy_note,
    default_threads,
    fixed_threads,
    local_world_size,
    run_threads,
    torch_threads,
    usable_cores,
)

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("cores,lws,want", [
    (2, 1, 2),   # this host, one process: both cores
    (2, 2, 1),   # this host under torchrun --nproc_per_node=2: one each (not 2 + 2 on 2 cores)
    (1, 1, 1),   # taskset -c 0
    (1, 2, 1),   # never 0
    (8, 3, 2),   # 8 // 3: the remainder stays free
    (16, 4, 4),
    (3, 0, 3),   # a nonsense local world size counts as 1
])
def test_auto_threads_splits_the_usable_cores_over_the_local_processes(cores, lws, want):
    assert auto_threads(cores=cores, local_world_size=lws) == want


def test_local_world_size_and_usable_cores():
    assert local_world_size({}) == 1
    assert local_world_size({"LOCAL_WORLD_SIZE": "2"}) == 2
    assert local_world_size({"LOCAL_WORLD_SIZE": "x"}) == 1
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_default_threads_outside_torchrun_stays_within_torchs_own_count():
    with torch_threads(1):  # as OMP_NUM_THREADS=1 leaves torch, or a host program that set 1
        assert default_threads({}) == 1
        assert default_threads({"LOCAL_WORLD_SIZE": "1"}) == usable_cores()  # torchrun: the split decides
    with torch_threads(usable_cores()):
        assert default_threads({}) == usable_cores()
        assert default_threads({"LOCAL_WORLD_SIZE": str(usable_cores())}) == 1


def test_run_threads_new_runs_resumes_and_old_runs():
    # a new run: --threads, else the config file's, else the automatic choice; nothing to say
    assert run_threads(given=3, recorded=None, resume=False, auto=2) == (3, None)
    assert run_threads(given=None, recorded=4, resume=False, auto=2) == (4, None)
    assert run_threads(given=None, recorded=None, resume=False, auto=2) == (2, None)
    # a resume keeps the recorded count; a different --threads is ignored, with a warning
    assert run_threads(given=None, recorded=1, resume=True, auto=2) == (1, None)
    assert run_threads(given=1, recorded=1, resume=True, auto=2) == (1, None)
    n, note = run_threads(given=2, recorded=1, resume=True, auto=2)
    assert n == 1 and "keeps the run's 1 thread(s)" in note and "ignoring --threads 2" in note
    # a run from before counts were recorded: the automatic choice (or --threads), said out loud
    n, note = run_threads(given=None, recorded=None, resume=True, auto=2)
    assert n == 2 and "recorded no thread count" in note and "automatic" in note
    assert run_threads(given=1, recorded=None, resume=True, auto=2)[0] == 1


@pytest.mark.parametrize("given,recorded", [(0, None), (None, 0), (None, True), (None, "2")])
def test_run_threads_refuses_nonsense_counts(given, recorded):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        run_threads(given=given, recorded=recorded, resume=False, auto=2)


def test_torch_threads_applies_and_restores():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError), torch_threads(0):
        pass


POOLS = """
import re, torch
from nse_hw.train.threads import torch_threads
with torch_threads(3):
    info = torch.__config__.parallel_info()
    print(sorted(set(re.findall(r"(?:get_num_threads|get_num_interop_threads|omp_get_max_threads|mkl_get_max_threads)"
                                r"\\(\\) : (\\d+)", info))), len(re.findall(r"_threads\\(\\) :", info)))
"""


def test_torch_threads_sets_every_pool_torch_has():
    """intra-op, inter-op (in a fresh process, before any inter-op work), OpenMP and MKL: all follow the count."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", POOLS], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=1)[0] == "['3']", out.stdout  # every count is 3
    assert int(out.stdout.split()[-1]) >= 3  # at least at::, interop and OpenMP were listed


@pytest.mark.parametrize("given,recorded,resume,want", [
    (None, None, False, None),  # the automatic choice (the share beside other jobs) decides
    (2, None, False, 2), (None, 3, False, 3), (2, 3, False, 2),  # --threads over the config file
    (None, None, True, None), (2, None, True, 2),  # a resumed run that predates recorded counts
    (2, 3, True, 3),  # a resumed run keeps its record
])
def test_fixed_threads_by_hand(given, recorded, resume, want):
    assert fixed_threads(given=given, recorded=recorded, resume=resume) == want


@pytest.mark.parametrize("raw,seconds", [(None, 300), ("", 300), ("20", 20), (" 2.5 ", 2.5)])
def test_parse_timeout(raw, seconds):
    assert dist.parse_timeout(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "nan", "inf"])
def test_parse_timeout_refuses(raw):
    with pytest.raises(ValueError, match="NSE_HW_DIST_TIMEOUT must be a positive number"):
        dist.parse_timeout(raw)


@pytest.fixture
def one_rank_group():
    tdist.init_process_group("gloo", store=tdist.HashStore(), rank=0, world_size=1)
    yield
    tdist.destroy_process_group()


def test_failure_message_is_one_line_naming_rank_and_limit(one_rank_group, monkeypatch):
    monkeypatch.setenv("NSE_HW_DIST_TIMEOUT", "7")
    exc = RuntimeError("[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 7000ms "
                       "for recv operation to complete\nException raised from ...\nframe #0: ...\nframe #1: ...")
    msg = dist.failure_message(exc, resume_dir="runs/x")
    assert "\n" not in msg
    assert msg.startswith("rank 0 of 1: a collective timed out (wait limit 7 s, $NSE_HW_DIST_TIMEOUT)")
    assert "[Timed out waiting 7000ms for recv operation to complete]" in msg and msg.endswith("--resume runs/x")
    lost = dist.failure_message(RuntimeError("Connection closed by peer [127.0.0.1]:1234"))
    assert "a collective failed" in lost and "--resume" not in lost
    assert dist.failure_message(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None  # a bug
    assert dist.failure_message(ValueError("timed out")) is None


def test_failure_message_outside_torchrun_is_none():
    assert dist.failure_message(RuntimeError("Timed out waiting 10ms for recv")) is None


# --- torchrun: a frozen or killed rank ends the run within the bound; --resume finishes it ---------------------

TIMEOUT_S = 8
CONFIG = """\
epochs: 6
batch_size: 32
lr: 0.05
warmup_epochs: 0.5
width_mult: 0.5
resolution: 32
limit_train: 512
limit_heldout: 96
limit_test: 128
eval_batch_size: 128
"""


def _rank_pids(parent: int) -> dict[int, int]:
    """{RANK: pid} of ``parent``'s child processes (torchrun starts --no-python workers as its children)."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            env = dict(kv.split("=", 1) for kv in (d / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(d.name)
    return found


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGSTOP", "SIGKILL"])
def test_a_frozen_or_killed_rank_fails_the_others_in_bounded_time_then_resume_finishes(tiny_files, tmp_path, sig):
    if shutil.which("torchrun", path=str(BIN)) is None:
        pytest.fail("torchrun is not installed beside python")
    arch_file, _ = tiny_files
    (tmp_path / "long.yaml").write_text(CONFIG)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "NSE_HW_DIST_TIMEOUT": str(TIMEOUT_S)}
    proc = subprocess.Popen([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "--no-python",
                             str(BIN / "nse-hw"), "train", str(arch_file), "--config", str(tmp_path / "long.yaml"),
                             "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 180
        while not (run / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        ranks = _rank_pids(proc.pid)
        assert proc.poll() is None and sorted(ranks) == [0, 1], "the run ended before its second epoch"
        os.kill(ranks[1], getattr(signal, sig))  # mid-run: epoch 1 is checkpointed, epoch 2 in flight
        stopped = time.time()
        while not _ended(ranks[0]) and time.time() - stopped < TIMEOUT_S + 60:
            time.sleep(0.1)
        waited = time.time() - stopped
        assert _ended(ranks[0]), f"rank 0 still running {waited:.0f} s after rank 1 got {sig}"
        if sig == "SIGSTOP":
            os.kill(ranks[1], signal.SIGKILL)  # torchrun would SIGTERM it, and a stopped process never reacts
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert waited < TIMEOUT_S + 60
    assert 'File "' + str(Path(dist.__file__).parents[1]) not in err  # no traceback from our code
    if sig == "SIGSTOP":  # rank 0 waited out the limit and said so in one line (torchrun's report follows)
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, err[-3000:]
        assert errors[0].startswith(f"error: rank 0 of 2: a collective timed out (wait limit {TIMEOUT_S} s")
        assert f"--resume {run}" in errors[0]
        assert waited >= TIMEOUT_S - 1
    res = subprocess.run([str(BIN / "nse-hw"), "train", "--resume", str(run)], capture_output=True, text=True,
                         env={**env, "NSE_HW_DIST_TIMEOUT": ""}, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "test top-1" in res.stdout
    result = json.loads((run / "result.json").read_text())
    assert result["epochs"] == 6 and result["threads"] == 1  # the count torchrun's two processes recorded


@pytest.mark.parametrize("threads,cores,load,warn", [
    (2, 2, 0.1, False),   # quiet: both cores free
    (2, 2, 1.0, True),    # one core busy: 1 free, 2 threads contend
    (1, 2, 1.9, False),   # one thread never spins against itself
    (4, 8, 4.2, False),   # 3.8 free >= 4 - 0.5
    (4, 8, 5.0, True),
])
def test_busy_note_by_hand(threads, cores, load, warn):
    note = busy_note(threads=threads, cores=cores, load=load)
    assert (note is not None) == warn
    if warn:
        assert f"--threads {max(1, round(cores - load))}" in note and f"load average {load:.1f}" in note
