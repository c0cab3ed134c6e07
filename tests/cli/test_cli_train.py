import json

import pytest

from nse_hw.atomic import exclusive_dir
from nse_hw.space import parse_layer
from tests.fixtures.cli import assert_refused, invoke
from tests.fixtures.train import ONE_EPOCH


@pytest.fixture
def files(tmp_path, tiny_space):
    arch = tiny_space.arch([parse_layer(s) for s in ("mb_k3_e3", "mb_k5_e3", "rec_k5_e2", "mb_k3_e3_d2")])
    (tmp_path / "arch.json").write_text(arch.dumps())
    (tmp_path / "c.yaml").write_text(ONE_EPOCH)
    other = tiny_space.arch([parse_layer("mb_k3_e1")] * 4)
    (tmp_path / "other.json").write_text(other.dumps())
    return tmp_path


def test_train_a_search_run_dir_then_refuse_misuse(files):
    search_run = files / "search"
    search_run.mkdir()
    (search_run / "arch.json").write_text((files / "arch.json").read_text())
    res = invoke("train", str(search_run), "--config", str(files / "c.yaml"), "--seed", "1")
    assert res.exit_code == 0, res.output
    run = search_run / "retrain"  # a search run dir retrains into RUN_DIR/retrain
    result = json.loads((run / "result.json").read_text())
    assert f"test top-1 {100 * result['test_top1']:.2f}%" in res.output and "width x0.5" in res.output
    assert "seed: 1" in (run / "config.yaml").read_text()
    before = sorted(p.name for p in run.iterdir())
    # a second run into the same directory would mix runs
    assert_refused(invoke("train", str(files / "arch.json"), "--config", str(files / "c.yaml"), "--out", str(run)),
                   "resume it with --resume")
    # resume: the run's own config, its own arch
    assert_refused(invoke("train", "--resume", str(run), "--epochs", "3"), "drop --epochs")
    assert_refused(invoke("train", str(files / "other.json"), "--resume", str(run)), "another architecture")
    assert sorted(p.name for p in run.iterdir()) == before  # nothing lost or added
    res = invoke("train", "--resume", str(run))  # already complete: reports the same result again
    assert res.exit_code == 0, res.output
    assert json.loads((run / "result.json").read_text())["test_top1"] == result["test_top1"]
    # a run another process is writing is refused; an edited config.yaml is not silently ignored
    with exclusive_dir(run):
        assert_refused(invoke("train", "--resume", str(run)), "in use by another nse-hw process")
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("lr: 0.05", "lr: 0.5"))
    assert_refused(invoke("train", "--resume", str(run)), "config.yaml was edited since the run started (lr)")
    (run / "config.yaml").write_text(text)


def test_bad_input_is_one_line_and_exit_2(files):
    cfg = str(files / "c.yaml")
    assert_refused(invoke("train"), "ARCH.json|RUN_DIR")
    (files / "empty").mkdir()
    assert_refused(invoke("train", str(files / "empty"), "--config", cfg), "without arch.json")
    (files / "bad.json").write_text("{")
    assert_refused(invoke("train", str(files / "bad.json"), "--config", cfg), "not JSON")
    assert_refused(invoke("train", str(files / "arch.json"), "--preset", "huge"), "no preset 'huge'")
    assert_refused(invoke("train", str(files / "arch.json"), "--lr", "0"), "--lr")
    assert_refused(invoke("train", "--resume", str(files / "nowhere")), "no checkpoint")
    assert_refused(invoke("train", str(files / "arch.json"), "--config", cfg, "--data", str(files / "nodata"),
                          "--out", str(files / "r")), "nodata")
    assert not (files / "r").exists() or not any((files / "r").iterdir())
    (files / "afile").write_text("keep me")
    assert_refused(invoke("train", str(files / "arch.json"), "--config", cfg, "--out", str(files / "afile")),
                   "is a file; choose another --out")
    assert (files / "afile").read_text() == "keep me"
