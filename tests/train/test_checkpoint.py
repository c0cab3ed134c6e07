"""Checkpoints: loading never runs code, corruption and truncation are one-line errors, old files still load."""

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fixtures
from fixtures.cli import assert_refused, invoke  # noqa: E402
from fixtures.search import tiny_budget_ms, tiny_setup  # noqa: E402

from nse_hw.errors import NseError  # noqa: E402
from nse_hw.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


class _Payload:
    """A pickle that, loaded with weights_only=False, creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil(path: Path, marker: Path) -> Path:
    torch.save({"format": "whatever", "state": _Payload(marker)}, path)
    return path


def _state() -> dict:
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    return {"model": torch.nn.Linear(8, 4).state_dict(), "torch": torch.__version__, "rng": rng,
            "history": [{"epoch": 1, "top1": 0.5}]}


def test_round_trip_keeps_tensors_and_rng_state(tmp_path):
    st = _state()
    back = load_checkpoint(save_checkpoint(st, tmp_path / "c.pt"))
    assert torch.equal(back["model"]["weight"], st["model"]["weight"])
    assert np.array_equal(back["rng"]["numpy"][1], st["rng"]["numpy"][1])
    assert back["rng"]["python"] == st["rng"]["python"] and back["history"] == st["history"]


def test_a_file_written_by_plain_torch_save_still_loads(tmp_path):
    """nse-hw 0.1 wrote checkpoints with torch.save of the same plain data (numpy RNG arrays included)."""
    torch.save(_state(), tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["history"] == [{"epoch": 1, "top1": 0.5}]


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "PWNED"
    with pytest.raises(NseError, match="refusing to load it.*posix.system"):
        load_checkpoint(_evil(tmp_path / "evil.pt", marker))
    assert not marker.exists()


def test_flipped_bytes_are_detected(tmp_path):
    path = save_checkpoint(_state(), tmp_path / "c.pt")
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 4096] = bytes(b ^ 0x5A for b in raw[mid:mid + 4096])
    path.write_bytes(raw)
    with pytest.raises(NseError, match="corrupt|unreadable"):
        load_checkpoint(path)


@pytest.mark.parametrize("cut", [0, 10, 0.5])
def test_truncated_files_are_refused(tmp_path, cut):
    path = save_checkpoint(_state(), tmp_path / "c.pt")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(cut * len(raw)) if isinstance(cut, float) else cut])
    with pytest.raises(NseError, match="unreadable|truncated|corrupt"):
        load_checkpoint(path)


def test_no_command_runs_code_from_a_checkpoint(tmp_path):
    """search --resume, train --resume and export each refuse a crafted checkpoint in one line."""
    marker = tmp_path / "PWNED"
    # train --resume DIR reads DIR/last.pt first
    (tmp_path / "tr").mkdir()
    _evil(tmp_path / "tr" / "last.pt", marker)
    assert_refused(invoke("train", "--resume", tmp_path / "tr"), "refusing to load it")
    # export CHECKPOINT
    assert_refused(invoke("export", _evil(tmp_path / "best.pt", marker), "--out", tmp_path / "ex"),
                   "refusing to load it")
    assert not (tmp_path / "ex").exists() or not any((tmp_path / "ex").iterdir())
    # search --resume RUN_DIR: a real run directory whose checkpoint was swapped
    cfg, table = tiny_setup(tmp_path)
    run = tmp_path / "run"
    args = ["--latency", f"{tiny_budget_ms()}ms", "--table", table, "--config", cfg]
    from nse_hw.evolve import RunDir

    res = invoke("search", *args, "--out", run)
    assert res.exit_code == 0, res.output
    _evil(RunDir(run).checkpoint, marker)
    (run / "arch.json").unlink()
    assert_refused(invoke("search", "--resume", run), "refusing to load it")
    assert not marker.exists()
