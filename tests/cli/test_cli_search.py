"""`nse-hw search` bad input: one line on stderr, exit code 2, no traceback, nothing lost."""

import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fixtures (FAKE tables, tests only)
from fixtures.fake_table import fake_table  # noqa: E402
from fixtures.search import tiny_budget_ms, tiny_setup  # noqa: E402

from nse_hw.atomic import exclusive_dir  # noqa: E402
from nse_hw.cli import cli  # noqa: E402
from nse_hw.space import load_space  # noqa: E402
from nse_hw.supernet import SpaceLatency  # noqa: E402
from nse_hw.train.checkpoint import load_checkpoint  # noqa: E402


def _run(*args):
    return CliRunner().invoke(cli, ["search", *args])


def _one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def setup(tmp_path):
    cfg, table = tiny_setup(tmp_path)
    return tmp_path, ["--table", str(table), "--config", str(cfg)]


@pytest.mark.parametrize("latency,needle", [("fast", "malformed latency"), ("-5ms", "malformed latency"),
                                            ("0", "must be positive"), ("0s", "must be positive")])
def test_bad_latency(setup, latency, needle):
    tmp, args = setup
    _one_line_error(_run("--latency", latency, *args, "--out", str(tmp / "r")), needle)
    assert not (tmp / "r").exists()


def test_budget_below_the_fastest_architecture_names_min_and_max(setup):
    tmp, args = setup
    space = load_space("tiny")
    model = SpaceLatency(space, fake_table(space))
    line = _one_line_error(_run("--latency", f"{model.min_ms() * 0.5:.4f}ms", *args, "--out", str(tmp / "r")),
                           "below the fastest architecture", f"{model.min_ms():.3f} ms", f"{model.max_ms():.3f} ms")
    assert "tiny" in line and not (tmp / "r").exists()


def test_budget_above_the_slowest_warns_and_runs(setup):
    tmp, args = setup
    res = _run("--latency", "1s", *args, "--out", str(tmp / "r"))
    assert res.exit_code == 0, res.output
    assert "above the slowest architecture" in res.output and (tmp / "r" / "arch.json").is_file()


def test_unknown_device_names_the_profiling_command(setup):
    tmp, _ = setup
    _one_line_error(_run("--latency", "80ms", "--device", "nosuchphone", "--out", str(tmp / "r")),
                    "no latency table for device 'nosuchphone'", "nse-hw profile --device nosuchphone")


def test_table_missing_keys_are_named(setup):
    tmp, args = setup
    table = fake_table(load_space("tiny"))
    missing = sorted(k for k in table.entries if k.startswith("mb_k7_e3"))
    for k in missing:
        del table.entries[k]
    table.save(tmp / "holes.json")
    _one_line_error(_run("--latency", "80ms", "--table", str(tmp / "holes.json"), "--config", args[3],
                         "--out", str(tmp / "r")), "has no entry for", missing[0], "nse-hw profile")


def test_empty_data_directory(setup):
    tmp, args = setup
    (tmp / "empty").mkdir()
    _one_line_error(_run("--latency", f"{tiny_budget_ms()}ms", *args, "--data", str(tmp / "empty"),
                         "--out", str(tmp / "r")), "empty or unreadable")
    assert not (tmp / "r").exists()


def test_resume_on_something_that_is_not_a_run(setup):
    tmp, _ = setup
    (tmp / "notrun").mkdir()
    (tmp / "notrun" / "precious.txt").write_text("keep me")
    _one_line_error(_run("--resume", str(tmp / "notrun")), "not a search run")
    _one_line_error(_run("--resume", str(tmp / "nowhere")), "no such directory")
    assert (tmp / "notrun" / "precious.txt").read_text() == "keep me"


def test_config_and_preset_conflict_and_missing_latency(setup):
    tmp, args = setup
    _one_line_error(_run("--latency", "80ms", *args, "--preset", "smoke"), "either --config or --preset")
    _one_line_error(_run(*args), "--latency is required")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(setup, monkeypatch):
    tmp, args = setup
    real_ce, calls = torch.nn.functional.cross_entropy, [0]

    def poisoned(*a, **kw):
        calls[0] += 1
        out = real_ce(*a, **kw)
        return out * float("nan") if calls[0] > 8 else out  # epoch 1 = 3 weight + 3 α steps, then NaN

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", poisoned)
    out = tmp / "r"
    line = _one_line_error(_run("--latency", f"{tiny_budget_ms()}ms", *args, "--out", str(out)),
                           "became NaN/inf at round 1, weight step", "last good checkpoint (round 1, epoch 1)")
    assert str(out) in line
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["state"]["epoch"] == 1 and all(torch.isfinite(t).all() for t in ckpt["net"].values()
                                               if t.is_floating_point())
    assert not (out / "arch.json").exists()
    # and a new run into the same directory refuses instead of overwriting it
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", real_ce)
    _one_line_error(_run("--latency", f"{tiny_budget_ms()}ms", *args, "--out", str(out)),
                    "already holds a search run", "--resume")


def test_a_run_in_use_or_with_an_edited_config_is_refused(setup):
    tmp, args = setup
    out = tmp / "r"
    with exclusive_dir(out):  # another process is writing this run
        _one_line_error(_run("--latency", f"{tiny_budget_ms()}ms", *args, "--out", str(out)), "in use by another")
    res = _run("--latency", f"{tiny_budget_ms()}ms", *args, "--out", str(out))
    assert res.exit_code == 0, res.output
    with exclusive_dir(out):
        _one_line_error(_run("--resume", str(out)), "in use by another nse-hw process")
    text = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text(text.replace("seed: 0", "seed: 7"))
    _one_line_error(_run("--resume", str(out)), "config.yaml was edited since the run started (seed)")
    (out / "config.yaml").write_text(text)
    assert _run("--resume", str(out)).exit_code == 0
    # a checkpoint that passes its CRC but lacks what a search needs
    from nse_hw.train.checkpoint import save_checkpoint

    for content in ({}, {"state": {"round": "x"}}):
        save_checkpoint({"format": "nse-hw/search-checkpoint/1", **content}, out / "checkpoint.pt")
        _one_line_error(_run("--resume", str(out)), "is not a complete search checkpoint")


@pytest.mark.parametrize("task, needle", [
    ("ct-fmnist-99", "unknown data source 'ct-fmnist-99'"),
    ({"canvas": 24, "scale": [0.2, 0.8], "clutter": [1, 2], "crop": 4}, "smaller than the network's total stride 32"),
    ({"canvas": 48, "clutter": [4, 40], "crop": 10}, "cannot fit"),
])
def test_a_task_that_cannot_be_used_is_one_line(tmp_path, task, needle):
    """Issue 21's bad input for named tasks: an unknown name, a canvas below the space's total stride, clutter
    that cannot fit the canvas: exit 2 before anything is written."""
    import yaml

    if isinstance(task, dict):
        path = tmp_path / "task.yaml"
        path.write_text(yaml.safe_dump({"kind": "cluttered-fashion-mnist", "test_placements": 1, "seed": 0, **task}))
        task = str(path)
    _one_line_error(_run("--latency", "80ms", "--data", task, "--preset", "smoke", "--out", str(tmp_path / "r")),
                    needle)
    assert not (tmp_path / "r").exists()
