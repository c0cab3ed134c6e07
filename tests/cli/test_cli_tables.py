import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from nse_hw.latency import load_table, space_keys
from nse_hw.space import load_space
from tests.fixtures.cli import assert_refused
from tests.fixtures.cli import invoke as run

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "device-data"
FAKE_DIR = REPO / "tests" / "fixtures" / "fake_adb"
_spec = importlib.util.spec_from_file_location("fake_phone", FAKE_DIR / "fake_phone.py")
fake_phone = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_phone)
MINI = {"name": "phone-mini", "input": [32, 32, 3], "classes": 10, "stem": {"op": "conv_k3", "out": 8, "stride": 2},
        "stages": [{"out": 8, "depth": 1, "stride": 1}], "head": {"out": 16}, "pool": ["mb_k3_e1"]}


@pytest.fixture(scope="module")
def shared():
    if not (SHARED / "proxylessnas_mobile_trim_pixel1.yaml").is_file():
        pytest.skip(f"public device data not found at {SHARED}")
    return SHARED


def test_import_then_transfer(shared, tmp_path):
    out = str(tmp_path / "p1.json")
    res = run("tables", "import", "--format", "benchmark-profile",
              str(shared / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"), "--device", "pixel1",
              "--arch", str(REPO / "configs/archs/proxylessnas-mobile-released-224.json"), "--out", out)
    assert res.exit_code == 0, res.output
    res = run("tables", "import", "--format", "proxylessnas", str(shared / "proxylessnas_mobile_trim_pixel1.yaml"),
              "--device", "pixel1", "--out", out)
    assert res.exit_code == 0 and "imported 72 entries" in res.output and "(77 entries in the table)" in res.output
    res = run("tables", "transfer", "--calibrate", out, "--space", "nse27-proxyless224", "--out", out)
    assert res.exit_code == 0, res.output
    assert "77 imported, 239 predicted" in res.output and "leave-one-out MAPE" in res.output
    assert "conv       anchored on mb x2.71" in res.output  # one stem, one head, one classifier: anchored
    t = load_table(out)
    assert set(space_keys(load_space("nse27-proxyless224"))) <= set(t.entries)
    assert t.meta["spaces"] == ["nse27-proxyless224"] and len(t.meta["imports"]) == 2


def test_import_and_transfer_errors(shared, tmp_path):
    ofa = str(shared / "ofa_note10_224_lookup_table.yaml")
    res = run("tables", "import", "--format", "ofa", ofa, "--device", "note10", "--out", str(tmp_path / "n.json"))
    assert res.exit_code == 2 and "have no counterpart" in res.output and "--allow-partial" in res.output
    res = run("tables", "import", "--format", "ofa", ofa, "--device", "note10", "--out", str(tmp_path / "n.json"),
              "--allow-partial")
    assert res.exit_code == 0 and res.output.count("skipped") == 2
    res = run("tables", "import", "--format", "csv", ofa, "--device", "x")
    assert res.exit_code == 2 and "unknown --format 'csv'" in res.output
    res = run("tables", "import", "--format", "proxylessnas", str(tmp_path / "nope.yaml"), "--device", "x")
    assert res.exit_code == 2 and "no such file" in res.output
    res = run("tables", "import", "--format", "benchmark-profile", ofa, "--device", "x")
    assert res.exit_code == 2 and "cannot parse benchmark_model output" in res.output
    # the Note10 blocks hold their residual adds: no add to fit or anchor on. Say what to measure
    res = run("tables", "transfer", "--calibrate", str(tmp_path / "n.json"), "--space", "nse27-proxyless224",
              "--out", str(tmp_path / "o.json"))
    assert res.exit_code == 2 and "family 'join' has 0 measured/imported entries" in res.output
    assert "measure or import one join unit, e.g. add|in=56x56x24" in res.output
    res = run("tables", "transfer", "--calibrate", str(tmp_path / "n.json"), "--space", "nse27-proxyless224",
              "--out", str(tmp_path / "o.json"), "--allow-partial")
    assert res.exit_code == 0 and "join       NOT predicted: 12 keys" in res.output, res.output
    # ... or take the factor another table of the runtime shows between its adds and its own mb model
    res = run("tables", "transfer", "--calibrate", str(tmp_path / "n.json"), "--space", "nse27-proxyless224",
              "--out", str(tmp_path / "o.json"), "--anchor-from", "pixel1-tflite")
    assert res.exit_code == 0 and "NOT predicted" not in res.output, res.output
    assert "join       anchored on mb x0.212, the factor of pixel1-tflite.json" in res.output
    res = run("tables", "transfer", "--calibrate", str(tmp_path / "n.json"), "--space", "nse27-proxyless224",
              "--out", str(tmp_path / "o.json"), "--anchor-from", str(tmp_path / "none.json"))
    assert res.exit_code == 2 and "none.json" in res.output and "Traceback" not in res.output
    res = run("tables", "transfer", "--calibrate", str(tmp_path / "n.json"), "--out", str(tmp_path / "o.json"))
    assert res.exit_code == 2 and "nothing to predict" in res.output


@pytest.fixture
def phone(tmp_path, monkeypatch):
    root = fake_phone.make_phone(tmp_path / "phone", governor="schedutil")
    fake_phone.phone_env(monkeypatch, root)
    (tmp_path / "mini.yaml").write_text(json.dumps(MINI))
    monkeypatch.setattr("nse_hw.profilers.phone.litert_exports",
                        lambda **kw: fake_phone.fake_exports(tmp_path / "exports", []))
    return root


def test_profile_phone_cli(phone, tmp_path, monkeypatch):
    out = str(tmp_path / "t.json")
    args = ["tables", "profile-phone", "--device", "pixel", "--space", str(tmp_path / "mini.yaml"), "--out", out]
    monkeypatch.setenv("FAKE_ADB_FAIL_AFTER", "12")
    res = run(*args)
    assert res.exit_code == 2 and "lost the connection to FAKE0001" in res.output and "resume" in res.output
    n = len(load_table(out).entries)
    monkeypatch.delenv("FAKE_ADB_FAIL_AFTER")
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert f"({n} already in the table)" in res.output
    t = load_table(out)
    assert len(t.entries) == len(space_keys(load_space(tmp_path / "mini.yaml")))
    assert t.meta["phone"]["cpus"]["cpu0"]["governor"] == "schedutil"


def test_profile_phone_cli_runtime_and_precision(phone, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("nse_hw.cli.tables.run_phone_profile", lambda **kw: seen.update(kw))
    res = run("tables", "profile-phone", "--runtime", "executorch", "--precision", "int8")
    assert res.exit_code == 0, res.output
    assert (seen["runtime"], seen["precision"], seen["device"]) == ("executorch", "int8", "pixel")
    res = run("tables", "profile-phone", "--runtime", "onnxruntime")
    assert res.exit_code == 2 and "'onnxruntime' is not one of" in res.output
    (tmp_path / "net.tflite").write_bytes(b"\0" * 20_000)
    res = run("tables", "profile-phone", "--model", str(tmp_path / "net.tflite"), "--runtime", "executorch")
    assert res.exit_code == 2 and "--runtime and --precision are for profiling a space" in res.output


def test_profile_whole_model_cli(phone, tmp_path):
    (tmp_path / "net.tflite").write_bytes(b"\0" * 20_000)
    res = run("tables", "profile-phone", "--model", str(tmp_path / "net.tflite"))
    assert res.exit_code == 0, res.output
    assert "net.tflite: mean" in res.output and "2 nodes" in res.output and "CONV_2D" in res.output
    res = run("tables", "profile-phone", "--model", str(tmp_path / "none.tflite"))
    assert res.exit_code == 2 and "no such file" in res.output


def test_profile_phone_cli_errors(phone, tmp_path, monkeypatch):
    args = ["tables", "profile-phone", "--space", str(tmp_path / "mini.yaml"), "--out", str(tmp_path / "t.json")]
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1:unauthorized")
    res = run(*args)
    assert res.exit_code == 2 and "device A1 is unauthorised" in res.output
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1:device,B2:device")
    res = run(*args)
    assert res.exit_code == 2 and "pick one with --serial" in res.output
    res = run(*args, "--serial", "Z9")
    assert res.exit_code == 2 and "device Z9 is not attached" in res.output
    res = run(*args, "--benchmark-binary", str(tmp_path / "missing"))
    assert res.exit_code == 2 and "no such file" in res.output
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    res = run(*args)
    assert res.exit_code == 2 and "no adb found" in res.output
    res = run("tables", "profile-phone", "--device", "nokia3310")
    assert res.exit_code == 2 and "unknown device 'nokia3310'" in res.output


def test_nse_hw_profile_device_pixel_is_the_phone_profiler(phone, tmp_path):
    out = str(tmp_path / "p.json")
    res = run("profile", "--device", "pixel", "--space", str(tmp_path / "mini.yaml"), "--out", out,
              "--serial", "FAKE0001")
    assert res.exit_code == 0, res.output
    t = load_table(out)
    assert len(t.entries) == len(space_keys(load_space(tmp_path / "mini.yaml")))
    assert {e["source"] for e in t.entries.values()} == {"measured"}
    res = run("profile", "--device", "host", "--runtime", "litert", "--space", "tiny", "--serial", "X")
    assert res.exit_code == 2 and "for phones" in res.output


def test_nse_hw_profile_executorch_on_the_phone(phone, tmp_path, monkeypatch):
    monkeypatch.setattr("nse_hw.profilers.phone.executorch_exports",
                        lambda **kw: fake_phone.fake_exports(tmp_path / "pte", [], suffix=".pte"))
    monkeypatch.setenv("NSE_HW_TABLES", str(tmp_path / "tables"))  # the user's table folder
    (phone / "data/local/tmp/xnn_executor_runner").unlink()
    args = ["profile", "--device", "pixel", "--runtime", "executorch", "--space", str(tmp_path / "mini.yaml"),
            "--precision", "int8"]
    assert_refused(run(*args), "no executable xnn_executor_runner at /data/local/tmp/xnn_executor_runner")
    res = run(*args, "--benchmark-binary", str(FAKE_DIR / "phone" / "xnn_executor_runner"))  # pushed, then run
    assert res.exit_code == 0, res.output
    out = tmp_path / "tables" / "pixel-executorch-int8.json"
    assert str(out) in res.output
    t = load_table(out, precision="int8")
    assert (t.meta["runtime"], t.meta["precision"]) == ("executorch", "int8")
    assert len(t.entries) == len(space_keys(load_space(tmp_path / "mini.yaml")))
    assert {e["stat"] for e in t.entries.values()} == {"median"}


def test_nse_hw_profile_phone_refuses_other_runtimes(phone, tmp_path):
    res = run("profile", "--device", "pixel", "--runtime", "onnxruntime", "--space", str(tmp_path / "mini.yaml"),
              "--out", str(tmp_path / "t.json"))
    assert_refused(res, "--runtime onnxruntime is not a phone runtime; a phone runs tflite")
    assert not (tmp_path / "t.json").exists()
    # litert is LiteRT's (TFLite's new) name: the same benchmark_model path, a tflite table
    res = run("profile", "--device", "pixel", "--runtime", "litert", "--space", str(tmp_path / "mini.yaml"),
              "--out", str(tmp_path / "t.json"))
    assert res.exit_code == 0, res.output
    assert load_table(tmp_path / "t.json").meta["runtime"] == "tflite"


STEM_RAW = "Conv-input:224x224x3-output:112x112x32"
STEM_KEY = "conv_k3|in=224x224x3|out=32|s=2"
HEAD_RAW = "Conv_1-input:7x7x320-output:7x7x1280"


def _pub(path, mean, count=10, **extra):
    path.write_text(yaml.safe_dump({STEM_RAW: {"mean": mean, "count": count, **extra},
                                    HEAD_RAW: {"mean": 3.0, "count": 10}}))
    return path


@pytest.mark.parametrize("mean, count, extra, says", [
    (-500.0, 10, {}, "mean -500.0"), (float("nan"), 10, {}, "mean nan"), (float("inf"), 10, {}, "mean inf"),
    (True, 10, {}, "mean True"), ("3.2", 10, {}, "mean '3.2'"), (1.0, "x", {}, "count 'x'"),
    (1.0, 2.5, {}, "count 2.5"), (1.0, 10, {"var": -1.0}, "var -1.0"), (1.0, 10, {"std": "big"}, "std 'big'"),
])
def test_import_refuses_impossible_latencies_and_keeps_the_table(tmp_path, mean, count, extra, says):
    out = tmp_path / "p.json"
    assert run("tables", "import", "--format", "proxylessnas", _pub(tmp_path / "ok.yaml", 2.0), "--device", "p1",
               "--out", out).exit_code == 0
    before = out.read_bytes()
    res = run("tables", "import", "--format", "proxylessnas", _pub(tmp_path / "bad.yaml", mean, count, **extra),
              "--device", "p1", "--out", out)
    assert_refused(res, says)
    assert "bad.yaml" in res.output and STEM_RAW in res.output
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "ok.yaml",
                                                                                       "p.json"]


@pytest.mark.parametrize("content, says", [
    ("caf\u00e9: 1".encode("latin-1"), "not UTF-8"), (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b"- 1\n- 2\n", "is not a proxylessnas latency table"),
])
def test_import_refuses_malformed_sources(tmp_path, content, says):
    (tmp_path / "bad.yaml").write_bytes(content)
    assert_refused(run("tables", "import", "--format", "proxylessnas", tmp_path / "bad.yaml", "--device", "p1",
                       "--out", tmp_path / "p.json"), says)
    assert not (tmp_path / "p.json").exists()


def test_import_into_a_bad_table_names_the_table_and_key(tmp_path):
    out = tmp_path / "p.json"
    out.write_text(json.dumps({"format": "nse-hw/latency-table/1", "meta": {"device": "p1", "runtime": "tflite"},
                               "entries": {STEM_KEY: {"ms": -500.0, "source": "imported"}}}))
    before = out.read_bytes()
    res = run("tables", "import", "--format", "proxylessnas", _pub(tmp_path / "ok.yaml", 2.0), "--device", "p1",
              "--out", out)
    assert_refused(res, f"latency table {out} is corrupt: entry {STEM_KEY!r} has ms -500.0")
    assert out.read_bytes() == before
    res = run("tables", "transfer", "--calibrate", out, "--space", "tiny", "--out", out)
    assert_refused(res, f"entry {STEM_KEY!r} has ms -500.0")
    assert out.read_bytes() == before


def test_import_while_a_profile_holds_a_stale_copy_keeps_both(tmp_path):
    # the lost update of issue 11: profile saved its in-memory copy over the imported entry
    out = tmp_path / "p.json"
    assert run("tables", "import", "--format", "proxylessnas", _pub(tmp_path / "a.yaml", 2.0), "--device", "p1",
               "--out", out).exit_code == 0
    profile = load_table(out)  # what a running profile holds
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"Conv-input:112x112x3-output:56x56x16": {"mean": 1.0}}))
    res = run("tables", "import", "--format", "proxylessnas", tmp_path / "b.yaml", "--device", "p1", "--out", out)
    assert res.exit_code == 0, res.output
    profile.set(STEM_KEY, ms=1.5, source="measured", n=5)
    profile.save()
    t = load_table(out)
    assert "conv_k3|in=112x112x3|out=16|s=2" in t.entries and t.entries[STEM_KEY]["source"] == "measured"
    assert [i["source"] for i in t.meta["imports"]] == ["a.yaml", "b.yaml"]
    # and a later import does not replace the measurement
    assert run("tables", "import", "--format", "proxylessnas", _pub(tmp_path / "c.yaml", 9.0), "--device", "p1",
               "--out", out).exit_code == 0
    assert load_table(out).entries[STEM_KEY]["ms"] == 1.5
