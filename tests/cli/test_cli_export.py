import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nse_hw.blocks import MultiBranch
from nse_hw.latency import LatencyTable, load_table, predict, space_keys
from nse_hw.space import Arch, load_space, parse_layer
from nse_hw.train.recipe import TrainConfig
from nse_hw.train.trainer import read_train_checkpoint, train
from tests.fixtures.cli import assert_refused, invoke

CFG = TrainConfig(epochs=1, batch_size=32, lr=0.05, width_mult=0.5, resolution=32, limit_train=128,
                  limit_heldout=64, limit_test=64)
FAST = ["--verify-images", "100", "--calibration-images", "16", "--runs", "20", "--warmup", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained run of a tiny deployment arch (32x32x3, 10 classes), and a host-litert table covering it."""
    root = tmp_path_factory.mktemp("export")
    space = load_space("tiny")
    arch = space.arch([parse_layer(s) for s in ("mb_k3_e3", "mb_k5_e3", "rec_k5_e2", "mb_k3_e3_d2")])
    train(arch, data="fashion-mnist", cfg=CFG, out=root / "run")
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1})
    for i, key in enumerate(space_keys(space)):
        table.set(key, ms=0.001 * (i + 1), source="measured")  # any values: the test checks the plumbing
    table.save(root / "table.json")
    int8 = LatencyTable({"device": "host", "runtime": "litert", "threads": 1, "dtype": "int8", "precision": "int8"})
    for i, key in enumerate(space_keys(space)):
        int8.set(key, ms=0.0005 * (i + 1), source="measured")
    int8.save(root / "table8.json")
    return root


def digest(path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_bad_input_refused_before_any_work(trained, tmp_path):
    run, table = trained / "run", str(trained / "table.json")
    before = digest(run)
    (tmp_path / "cut.pt").write_bytes((run / "best.pt").read_bytes()[:3000])
    assert_refused(invoke("export", str(tmp_path / "cut.pt"), "--table", table), "unreadable or truncated")
    state = read_train_checkpoint(run / "best.pt")
    state["proxy_arch"]["layers"][2]["ops"] = "mb_k7_e3"  # weights of rec_k5_e2 under another op
    torch.save(state, tmp_path / "other.pt")
    assert_refused(invoke("export", str(tmp_path / "other.pt"), "--table", table), "does not fit architecture")
    mixed = tmp_path / "mixed"  # a run dir whose arch.json is not the checkpoint's arch
    mixed.mkdir()
    (mixed / "best.pt").write_bytes((run / "best.pt").read_bytes())
    (mixed / "arch.json").write_text(load_space("tiny").arch([parse_layer("mb_k3_e1")] * 4).dumps())
    assert_refused(invoke("export", str(mixed), "--table", table), "trained for another architecture")
    for size in ("4", "0", "-3"):
        assert_refused(invoke("export", str(run), "--table", table, "--input-size", size, "--out",
                              str(tmp_path / "o")), "input size")
    assert_refused(invoke("export", str(run), "--table", table, "--int8", "--int8-table", str(trained / "table8.json"),
                          "--data", str(tmp_path / "gone"), "--out", str(tmp_path / "o")),
                   "--int8 needs calibration images")
    # the int8 deployment network is predicted by an int8 table only
    assert_refused(invoke("export", str(run), "--table", table, "--int8", "--int8-table", table,
                          "--out", str(tmp_path / "o")), "holds float32 latencies, not int8")
    assert_refused(invoke("export", str(run), "--table", str(trained / "table8.json"), "--out", str(tmp_path / "o")),
                   "holds int8 latencies, not float32")
    assert_refused(invoke("export", str(run), "--table", table, "--int8-table", table), "--int8-table needs --int8")
    assert_refused(invoke("export", str(run), "--format", "onnx", "--int8", "--table", table), "--int8")
    assert_refused(invoke("export", str(run), "--table", str(tmp_path / "none.json")), "no latency table")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep")
    assert_refused(invoke("export", str(run), "--table", table, "--out", str(tmp_path / "busy")), "--force")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep"
    assert not (tmp_path / "o").exists() and digest(run) == before  # nothing written, nothing lost
    assert_refused(invoke("measure", str(table)), "expected a .tflite or .onnx")


@pytest.mark.slow
def test_export_all_int8_verifies_and_the_card_tells_which_file_is_which(trained, tmp_path):
    run, table = trained / "run", str(trained / "table.json")
    out = tmp_path / "ship"
    res = invoke("export", str(run), "--int8", "--table", table, "--int8-table", str(trained / "table8.json"),
                 "--out", str(out), "--json", *FAST)
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["verified"] is True
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["arch.json", "proxy_arch.json", "model.tflite", "model_int8.tflite", "model.onnx",
         "deployment_random_weights.tflite", "deployment_random_weights_int8.tflite", "model_card.json"])
    files = card["files"]
    for name in ("model.tflite", "model.onnx"):
        v = files[name]["verification_vs_pytorch"]
        assert v["images"] == 100 and v["max_abs_diff"] < 1e-4 and v["top1_agreement"] == 1.0
        assert v["top1_file"] == v["top1_torch"]
    i8 = files["model_int8.tflite"]
    assert i8["vs_float_tflite"]["size_ratio"] < 0.8 and i8["verification_vs_pytorch"]["top1_agreement"] > 0.5
    assert card["input"]["tflite"] == {"layout": "NHWC", "shape": [1, 32, 32, 1], "dtype": "float32"}
    assert card["input"]["normalisation"]["mean"] == [0.286] and len(card["labels"]) == 10
    # the latency is the deployment arch's, predicted by the table and measured on its own file
    arch = Arch.from_dict(card["arch"]["deployment"])
    assert list(arch.input) == [32, 32, 3] and card["arch"]["proxy"]["input"] == [32, 32, 1]
    lat = card["latency"]
    assert lat["predicted_ms"] == pytest.approx(predict(arch, load_table(table)).total_ms)
    assert lat["measured_file"] == "deployment_random_weights.tflite" and lat["measured"]["n"] == 20
    assert "RANDOM weights" in files["deployment_random_weights.tflite"]["what"]
    assert lat["signed_error_pct"] == pytest.approx(
        100 * (lat["predicted_ms"] - lat["measured"]["ms"]) / lat["measured"]["ms"])
    assert card["accuracy"]["training_result"]["width_mult"] == 0.5
    # int8: what ships int8 is predicted by the int8 table and measured as an int8 deployment file
    i8lat = lat["int8"]
    assert i8lat["predicted_ms"] == pytest.approx(predict(arch, load_table(trained / "table8.json")).total_ms)
    assert i8lat["measured_file"] == "deployment_random_weights_int8.tflite"
    assert i8lat["table_meta"]["precision"] == "int8"
    assert "int8 PTQ" in files["deployment_random_weights_int8.tflite"]["what"]
    # the int8 file is timed with both LiteRT kernel paths, and the card says which is faster here
    cmp = i8lat["measured"]["kernels_compared"]
    assert set(cmp["ms"]) == {"xnnpack", "builtin"} and cmp["faster"] in cmp["ms"] and cmp["ratio"] >= 1
    assert i8lat["measured"]["kernels"] == "xnnpack" and "not re-measured" in cmp["intel_reference"]["source"]
    assert lat["host_cpu"] == card["host"]["cpu_fingerprint"] and lat["cpu_match"] in ("same", "unknown")

    res = invoke("measure", str(out / "deployment_random_weights.tflite"), "--arch", str(out / "arch.json"),
                 "--table", table, "--runs", "20", "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.output)
    assert m["n"] == 20 and m["p10"] <= m["ms"] <= m["p90"] and m["predicted_ms"] == lat["predicted_ms"]
    deploy8 = str(out / "deployment_random_weights_int8.tflite")
    assert_refused(invoke("measure", deploy8, "--arch", str(out / "arch.json"), "--table", table),
                   "holds float32 latencies, not int8")  # the model's own precision picks the table
    assert_refused(invoke("measure", deploy8, "--arch", str(out / "arch.json"), "--precision", "float32"),
                   "is int8; --precision float32")
    res = invoke("measure", deploy8, "--arch", str(out / "arch.json"), "--table", str(trained / "table8.json"),
                 "--runs", "20", "--json")
    assert res.exit_code == 0, res.output
    m8 = json.loads(res.output)
    assert m8["precision"] == "int8" and set(m8["kernels_compared"]["ms"]) == {"xnnpack", "builtin"}
    res = invoke("measure", str(out / "model.onnx"), "--arch", str(out / "arch.json"), "--table", table)
    assert_refused(res, "runtime 'litert', not 'onnxruntime'")
    res = invoke("measure", str(out / "model.tflite"), "--arch", str(out / "arch.json"), "--table", table)
    assert_refused(res, "(1, 32, 32, 1), but")  # the proxy file is not the deployment arch
    before = digest(out)
    assert_refused(invoke("export", str(run), "--table", table, "--out", str(out)), "--force")
    assert digest(out) == before


@pytest.mark.slow
def test_unlowerable_op_is_named_with_its_layer(trained, tmp_path, monkeypatch):
    forward = MultiBranch.forward

    def patched(self, x):
        y = forward(self, x)
        return torch.cummax(y, dim=1)[0] if self.label == "rec_k5_e2" else y

    monkeypatch.setattr(MultiBranch, "forward", patched)
    res = invoke("export", str(trained / "run"), "--format", "tflite", "--table", str(trained / "table.json"),
                 "--out", str(tmp_path / "o"), *FAST)
    assert_refused(res, "aten.cummax")
    assert "in layer layers.3 (rec_k5_e2)" in res.output


@pytest.mark.slow
def test_a_killed_export_leaves_no_half_set_and_the_next_one_cleans_up(trained, tmp_path):
    """kill -9 after the proxy files are converted: no model file without its card; a plain re-run completes."""
    crash = Path(__file__).resolve().parents[1] / "fixtures" / "crash.py"
    out, table = tmp_path / "ship", str(trained / "table.json")
    args = ["export", str(trained / "run"), "--format", "tflite", "--table", table, "--out", str(out), *FAST]
    killed = subprocess.run([sys.executable, str(crash), "call", "nse_hw.export.ship:_deployment_file", "1", "--",
                             *args], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []  # only the staging debris
    res = invoke(*args)  # no --force needed: debris is not a previous export
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["arch.json", "proxy_arch.json", "model.tflite", "deployment_random_weights.tflite", "model_card.json"])
