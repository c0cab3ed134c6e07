"""The job registry: fair shares worked out by hand, live/dead/reused entries, and real processes started together."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nse_hw import cpushare
from nse_hw.cpushare import (
    ENV,
    Job,
    Registry,
    fair_share,
    held_and_pending,
    proc_start,
    registry_dir,
    share_threads,
)

TWO = frozenset({0, 1})


def job(threads, cpus=TWO, pid=1):
    return Job(pid=pid, start=1, cpus=frozenset(cpus), threads=threads)


@pytest.mark.parametrize("cpus,others,want", [
    (TWO, [], 2),                                  # alone: every CPU
    (TWO, [job(None)], 1),                         # one starting beside us: half each
    (TWO, [job(1)], 1),                            # one holding a core: the other one
    (TWO, [job(2)], 1),                            # one holding both: still 1, never 0
    (TWO, [job(1), job(1)], 1),
    (TWO, [job(1, cpus={1})], 1),                  # pinned to core 1: it holds that core
    (TWO, [job(2, cpus={2, 3})], 2),               # on other CPUs: holds none of ours
    ({0}, [job(2)], 1),                            # taskset -c 0 beside a 2-thread job
    (range(8), [job(None), job(None)], 2),         # 8 // 3: the remainder stays free
    (range(8), [job(2, cpus=range(8)), job(None, cpus=range(8))], 3),  # (8 - 2) // 2
    (range(8), [job(4, cpus={0, 1})], 6),          # it can hold only the 2 CPUs it shares with us
    (range(16), [job(4, cpus=range(16))] * 3, 4),
])
def test_fair_share_by_hand(cpus, others, want):
    assert fair_share(cpus=cpus, others=others) == want


def test_registry_dir_precedence(tmp_path):
    assert registry_dir({ENV: str(tmp_path)}) == tmp_path
    assert registry_dir({"XDG_RUNTIME_DIR": "/run/user/7"}).as_posix() == "/run/user/7/nse-hw/jobs"
    assert registry_dir({"XDG_CACHE_HOME": "/c"}).as_posix() == "/c/nse-hw/jobs"


def test_proc_start_of_this_a_dead_and_a_zombie_process():
    assert proc_start(os.getpid()) == proc_start(os.getpid()) > 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _state(child.pid) != "Z" and time.monotonic() < deadline:  # exited, not reaped yet
        time.sleep(0.05)
    assert proc_start(child.pid) is None  # a zombie uses no core
    child.wait()
    assert proc_start(child.pid) is None


def _state(pid):
    """The state letter of /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def test_live_ignores_and_removes_dead_and_reused_pids(tmp_path):
    reg = Registry(tmp_path)
    me = Job(pid=os.getpid(), start=proc_start(os.getpid()), cpus=TWO, threads=2, command="train")
    reused = Job(pid=os.getpid(), start=me.start - 1, cpus=TWO, threads=1)  # same pid, earlier process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = Job(pid=child.pid, start=5, cpus=TWO, threads=1)
    for j in (me, reused, dead):
        reg.write(j)
    (tmp_path / "notes.json").write_text("{}")  # not ours: left alone
    assert reg.live() == [me]
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted([me.name, "notes.json"])


CHILD = """
import sys, time
from nse_hw import cpushare
cpushare.usable_cpus = lambda: frozenset({0, 1})  # as on a 2-core machine, whatever this test is pinned to
if sys.argv[1] == "claim":
    cpushare.claim_pending("train")
print("ready", flush=True)
sys.stdin.readline()  # go: both at the same moment
time.sleep(float(sys.argv[2]))  # the imports between claim and decision
with cpushare.share_threads(cap=2, command="train") as shared:
    print(shared.threads, flush=True)
    time.sleep(1.5)  # the job runs
"""


def _together(tmp_path, mode, delays):
    env = {**os.environ, ENV: str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, mode, str(d)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for d in delays]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("\n")
            p.stdin.flush()
        out = [int(p.stdout.readline()) for p in procs]
        for p in procs:
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            p.kill()
    return out


def test_two_jobs_started_together_take_one_thread_each_and_leave_no_files(tmp_path):
    # the second decides 0.3 s after the first: it sees the first's count; the first saw the second's claim
    assert _together(tmp_path, "claim", [0.0, 0.3]) == [1, 1]
    assert not list(tmp_path.glob("*.json"))
    assert _together(tmp_path, "claim", [0.0]) == [2]  # a lone job keeps every core


def test_without_claims_the_lock_still_lets_the_later_one_see_the_first(tmp_path):
    assert sorted(_together(tmp_path, "no-claim", [0.0, 0.0])) == [1, 2]  # never 2 + 2


def test_a_killed_job_is_ignored_and_its_file_removed(tmp_path):
    env = {**os.environ, ENV: str(tmp_path)}
    p = subprocess.Popen([sys.executable, "-c", CHILD, "claim", "0"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "ready"
    p.stdin.write("\n")
    p.stdin.flush()
    assert p.stdout.readline().strip() == "2"
    p.kill()
    p.wait()
    assert len(list(tmp_path.glob("*.json"))) == 1  # kill -9: no exit handler ran
    assert _together(tmp_path, "claim", [0.0]) == [2]
    assert not list(tmp_path.glob("*.json"))


def test_share_threads_registers_a_fixed_count_and_removes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(cpushare, "usable_cpus", lambda: TWO)
    reg = Registry(tmp_path)
    with share_threads(cap=2, fixed=2, command="search", registry=reg) as shared:
        assert (shared.threads, shared.auto, shared.others) == (2, 2, ())
        [entry] = tmp_path.glob("*.json")
        assert json.loads(entry.read_text()) == {"pid": os.getpid(), "start": proc_start(os.getpid()),
                                                 "cpus": [0, 1], "threads": 2, "command": "search"}
    assert not list(tmp_path.glob("*.json"))


def test_an_unusable_registry_warns_and_keeps_the_cap(tmp_path, caplog):
    (tmp_path / "file").write_text("")
    with share_threads(cap=2, registry=Registry(tmp_path / "file" / "jobs")) as shared:
        assert shared.threads == 2
    assert "cannot use the job registry" in caplog.text and ENV in caplog.text


def test_claim_pending_writes_an_entry_without_a_count_until_exit(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    monkeypatch.setattr(cpushare, "_claimed", [])
    cpushare.claim_pending("train")
    [entry] = tmp_path.glob("*.json")
    assert json.loads(entry.read_text())["threads"] is None  # pending: no count yet
    cpushare._release()  # what atexit runs
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("cpus,others,want", [
    (TWO, [], (0, 0)),
    (TWO, [job(2), job(None)], (2, 1)),
    (TWO, [job(3)], (2, 0)),                  # no more than the CPUs it shares with us
    ({0}, [job(1, cpus={1}), job(None, cpus={1})], (0, 0)),  # elsewhere: not counted
])
def test_held_and_pending_by_hand(cpus, others, want):
    assert held_and_pending(cpus=cpus, others=others) == want
