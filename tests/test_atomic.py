"""Atomic writes and run-directory locks: a second writer is refused, debris of interrupted writes is removed."""

import os
import subprocess
import sys

import pytest

from nse_hw.atomic import LOCK_NAME, atomic_write, atomic_write_text, exclusive_dir, is_bookkeeping, remove_stale_temps
from nse_hw.errors import NseError

HOLD = """
import sys, time
from nse_hw.atomic import exclusive_dir
with exclusive_dir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_while_the_first_holds_the_directory(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(NseError, match=rf"in use by another nse-hw process \(pid {proc.pid}\)"), \
                exclusive_dir(run):
            pass
    finally:
        proc.kill()
        proc.wait()
    with exclusive_dir(run):  # kill -9 released it: the kernel drops flock with the process
        assert (run / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (run / LOCK_NAME).exists()  # removed on release


def test_the_same_process_cannot_take_the_lock_twice(tmp_path):
    with exclusive_dir(tmp_path), pytest.raises(NseError, match="in use"), exclusive_dir(tmp_path):
        pass


def test_interrupted_writes_are_cleaned_under_the_lock_and_nothing_else(tmp_path):
    (tmp_path / "rounds").mkdir()
    debris = [tmp_path / ".checkpoint.pt.ab12cd_3.tmp", tmp_path / "rounds" / ".round-01.json.zz99yy88.tmp"]
    keep = [tmp_path / "checkpoint.pt", tmp_path / ".hidden.tmp", tmp_path / "notes.tmp",
            tmp_path / "retrain" / ".last.pt.ab12cd_3.tmp"]  # another run's directory: not ours to clean
    for p in debris + keep:
        p.parent.mkdir(exist_ok=True)
        p.write_text("x")
    with exclusive_dir(tmp_path, subdirs=("rounds",)):
        assert [p for p in debris if p.exists()] == []
    assert all(p.exists() for p in keep)
    assert all(is_bookkeeping(p) for p in debris) and not is_bookkeeping(keep[0])
    assert remove_stale_temps(tmp_path) == []


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    path = atomic_write_text(tmp_path / "a.json", "old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_run_directory_refused_before_any_write_is_not_left_behind(tmp_path):
    """Bad input found inside the lock (e.g. a task canvas below the network's stride): the directory this call
    created is removed again; one that existed, or that got a file, stays."""
    with pytest.raises(NseError), exclusive_dir(tmp_path / "new"):
        raise NseError("refused")
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    with pytest.raises(NseError), exclusive_dir(tmp_path / "old"):
        raise NseError("refused")
    assert (tmp_path / "old").is_dir()
    with pytest.raises(NseError), exclusive_dir(tmp_path / "written") as run:
        (run / "arch.json").write_text("{}")
        raise NseError("failed later")
    assert (tmp_path / "written" / "arch.json").read_text() == "{}"
    with exclusive_dir(tmp_path / "ok"):
        pass
    assert (tmp_path / "ok").is_dir()  # a run that ends well keeps its (even empty) directory
