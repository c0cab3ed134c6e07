"""kill -9 of `nse-hw profile`: no converter outlives it, and a re-run keeps every saved entry and leaves no
temp files. Each kill is injected at a chosen moment in a child process, not at a random time."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nse_hw.profilers.pipeline import WORK_PREFIX
from nse_hw.profilers.table_builder import profile_host

from nse_hw.latency import load_table, space_keys
from nse_hw.space import load_space
from tests.fixtures.spaces import MICRO_SPACE_YAML

REPO = Path(__file__).resolve().parents[2]
FAST = {"warmup": 2, "runs": 5, "convert_cpus": set(), "progress": False}
FAST_CLI = ["--warmup", "2", "--runs", "5", "--convert-cpus", "none"]


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "micro.yaml"
    path.write_text(MICRO_SPACE_YAML)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _running(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _leftovers(*dirs):
    return sorted(str(p) for d in dirs for p in Path(d).rglob(".*")
                  if p.name.endswith((".tmp", ".lock", ".probe")) or p.name.startswith(WORK_PREFIX))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_during_conversion_takes_the_converters_with_it(micro, cache, tmp_path):
    out = tmp_path / "t.json"
    proc = subprocess.Popen([sys.executable, "-m", "nse_hw.cli", "profile", "--runtime", "onnxruntime", "--space",
                             str(micro), "--out", str(out), "--cache", str(cache), *FAST_CLI],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # until a converter is at work
            kids = _children(proc.pid)
            workers = [k for k in kids if "spawn_main" in _cmdline(k)]
            if workers and any(cache.glob(f"{WORK_PREFIX}{workers[0]}")):
                break
            time.sleep(0.2)
        assert proc.poll() is None and workers, "no converter process appeared"
        time.sleep(1.0)  # inside an export now
        kids = _children(proc.pid)
        assert any("resource_tracker" in _cmdline(k) for k in kids)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        while any(_running(k) for k in kids) and time.monotonic() - t0 < 10:
            time.sleep(0.1)
        alive = {k: _cmdline(k) for k in kids if _running(k)}
        assert not alive, f"outlived the profiler by 10 s: {alive}"
        print(f"{len(kids)} children gone {time.monotonic() - t0:.2f} s after the kill")
    finally:
        for k in kids:  # never leave a stray converter behind, even when the test fails
            if _running(k):
                os.kill(k, signal.SIGKILL)
    assert any(cache.glob(f"{WORK_PREFIX}*"))  # the killed converter's temp folder...
    res = profile_host(load_space(micro), runtime="onnxruntime", out=out, cache=cache, **FAST)
    assert res.measured + res.skipped == 7 and len(load_table(out).entries) == 7
    assert _leftovers(cache, tmp_path) == []  # ...is gone after the resumed run, and nothing else is left


_DIE_IN_SAVE = """
import json, os, signal, sys
from pathlib import Path
from nse_hw.atomic import atomic_write
from nse_hw.latency import table
from nse_hw.space import load_space
from nse_hw.profilers.table_builder import profile_host

space, out, cache, mode = sys.argv[1:]
real, saves = table.atomic_write_json, []

def dying(path, obj):
    saves.append(path)
    if len(saves) == 3:  # the third entry's save
        text = json.dumps(obj)
        def killed(tmp):
            tmp.write_text(text[: len(text) // 2] if mode == "half-written" else text)
            os.kill(os.getpid(), signal.SIGKILL)  # before the rename: the old table must survive
        atomic_write(path, killed)
    return real(path, obj)

table.atomic_write_json = dying
profile_host(load_space(space), runtime="onnxruntime", out=Path(out), cache=Path(cache), warmup=2, runs=5,
             convert_cpus=set(), progress=False, speed_probe=False)  # saved after every entry
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["half-written", "before-rename"])
def test_kill_9_inside_a_table_save_then_resume(micro, cache, tmp_path, mode):
    out = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, "-c", _DIE_IN_SAVE, str(micro), str(out), str(cache), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _leftovers(tmp_path)  # the kill left the temp file (and the lock file) behind
    saved = json.loads(out.read_text())  # the previous save, whole
    keys = space_keys(load_space(micro))
    assert list(saved["entries"]) == keys[:2]  # two saved; the third was in flight
    res = profile_host(load_space(micro), runtime="onnxruntime", out=out, cache=cache, speed_probe=False, **FAST)
    assert (res.measured, res.skipped) == (5, 2)
    t = load_table(out)
    assert list(t.entries) == keys and {k: t.entries[k] for k in keys[:2]} == saved["entries"]
    assert _leftovers(tmp_path, cache) == []


def test_sweep_removes_only_the_work_folders_of_gone_converters(tmp_path):
    from nse_hw.profilers.pipeline import sweep_work_dirs

    done = subprocess.Popen(["true"])
    done.wait()  # reaped: its pid names no process now
    dead, live = tmp_path / f"{WORK_PREFIX}{done.pid}", tmp_path / f"{WORK_PREFIX}{os.getpid()}"
    for d in (dead, live):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / ".x.onnx.abc.tmp").write_text("half")
    (tmp_path / f"{WORK_PREFIX}notapid").mkdir()
    assert sweep_work_dirs(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, f"{WORK_PREFIX}notapid"])
