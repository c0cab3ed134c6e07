"""The phone profiler against a stand-in adb (tests/fixtures/fake_adb): pushing, shell quoting, provenance,
resumption after a dropped connection, and every user error, all run for real through subprocesses."""

import json

import pytest
from fake_phone import FAKE_ADB_DIR as FAKE_DIR
from fake_phone import MINI, fake_exports, make_phone, phone_env
from fake_phone import pixel_cfg as cfg
from nse_hw.profilers.adb import ConnectionLost, connect, find_adb
from nse_hw.profilers.benchmark_model import BenchmarkParseError
from nse_hw.profilers.phone import ensure_binary, load_device_config, profile_model, profile_phone

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table, space_keys
from nse_hw.space import space_from_dict


def test_profile_end_to_end_with_provenance(phone, space, tmp_path):
    calls: list[str] = []
    out = tmp_path / "t.json"
    res = profile_phone(space, device_cfg=cfg(remote_dir="/data/local/tmp/nse hw"), out=out,
                        export_fn=fake_exports(tmp_path / "x", calls), progress=False)
    keys = space_keys(space)
    assert res.measured == keys == calls and res.skipped == 0
    t = load_table(out)
    assert set(t.entries) == set(keys)
    assert all(e["source"] == "measured" and e["n"] == 30 and e["stat"] == "mean" for e in t.entries.values())
    # the fake binary's time grows with file size (which grows with the key's length)
    by_len = sorted(keys, key=len)
    assert t.ms(by_len[0]) < t.ms(by_len[-1])
    m = t.meta
    assert (m["device"], m["runtime"], m["threads"], m["runtime_version"]) == ("pixel", "tflite", 1, "2.99.0-fake")
    assert m["phone"]["model"] == "Pixel" and m["phone"]["android"] == "10" and m["phone"]["taskset"] == "c"
    assert m["phone"]["cpus"]["cpu2"] == {"governor": "performance", "cur_khz": 2150400, "min_khz": 307200,
                                          "max_khz": 2150400, "hw_max_khz": 2150400}
    assert (phone / ".taskset_masks").read_text().split() == ["c"] * len(keys)
    # the remote dir has a space in it: pushed there, quoted right, and cleaned up after each entry
    assert (phone / "data/local/tmp/nse hw").is_dir() and not list((phone / "data/local/tmp/nse hw").iterdir())


def test_dropped_connection_then_resume(phone, space, tmp_path, monkeypatch):
    out = tmp_path / "t.json"
    monkeypatch.setenv("FAKE_ADB_FAIL_AFTER", "16")  # setup takes ~9 calls, each entry 3
    calls: list[str] = []
    with pytest.raises(ConnectionLost, match="run the same command again to resume"):
        profile_phone(space, device_cfg=cfg(), out=out, export_fn=fake_exports(tmp_path / "x", calls),
                      progress=False)
    first = load_table(out).entries
    keys = space_keys(space)
    assert 0 < len(first) < len(keys)
    monkeypatch.delenv("FAKE_ADB_FAIL_AFTER")
    calls.clear()
    res = profile_phone(space, device_cfg=cfg(), out=out, export_fn=fake_exports(tmp_path / "y", calls),
                        progress=False)
    assert res.skipped == len(first) and res.measured == calls == [k for k in keys if k not in first]
    final = load_table(out).entries
    assert set(final) == set(keys) and all(final[k] == first[k] for k in first)  # kept, not re-measured


def test_resume_refuses_a_table_measured_differently(phone, space, tmp_path):
    out = tmp_path / "t.json"
    meta = {"device": "pixel", "runtime": "tflite", "threads": 1, "warmup": 3, "runs": 30, "phone": {"taskset": "c"}}
    LatencyTable(meta).save(out)
    with pytest.raises(NseError, match="measured differently: threads=1 \\(now 2\\), taskset='c' \\(now 'f'\\)"):
        profile_phone(space, device_cfg=cfg(threads=2, taskset="f"), out=out, export_fn=fake_exports(tmp_path, []))


def test_device_selection_errors(phone, monkeypatch):
    assert connect().serial == "FAKE0001"
    monkeypatch.setenv("FAKE_ADB_DEVICES", "")
    with pytest.raises(NseError, match="no Android device attached"):
        connect()
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1:device,B2:device")
    with pytest.raises(NseError, match="2 devices attached \\(A1, B2\\); pick one with --serial"):
        connect()
    assert connect(serial="B2").serial == "B2"
    with pytest.raises(NseError, match="device C3 is not attached; attached: A1, B2"):
        connect(serial="C3")
    monkeypatch.setenv("FAKE_ADB_DEVICES", "A1:unauthorized")
    with pytest.raises(NseError, match="unauthorised: unlock the phone"):
        connect()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(NseError, match="no adb found"):
        find_adb()


def test_missing_binary_then_pushed(tmp_path, monkeypatch, space):
    root = make_phone(tmp_path / "phone", with_binary=False)
    phone_env(monkeypatch, root)
    with pytest.raises(NseError, match="no executable benchmark_model at /data/local/tmp/benchmark_model"):
        profile_phone(space, device_cfg=cfg(), out=tmp_path / "t.json", export_fn=fake_exports(tmp_path, []))
    local = FAKE_DIR / "phone" / "benchmark_model"
    remote = ensure_binary(connect(), cfg(benchmark_binary="/data/local/tmp/bin dir/bm"), local)
    pushed = root / "data/local/tmp/bin dir/bm"
    assert remote == "/data/local/tmp/bin dir/bm" and pushed.read_bytes() == local.read_bytes()
    assert pushed.stat().st_mode & 0o777 == 0o755


def test_unparseable_benchmark_output(phone, space, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_BENCH", "garbage")
    with pytest.raises(BenchmarkParseError, match="Segmentation fault \\(fake\\) \\| something else"):
        profile_phone(space, device_cfg=cfg(), out=tmp_path / "t.json", export_fn=fake_exports(tmp_path, []))
    assert load_table(tmp_path / "t.json").entries == {}  # provenance saved, nothing measured


def test_whole_model_with_op_profiling(phone, tmp_path):
    model = tmp_path / "net.tflite"
    model.write_bytes(b"\0" * 50_000)
    res = profile_model(model, device_cfg=cfg())
    assert res.count == 30 and [n.type for n in res.nodes] == ["CONV_2D", "ADD"] and res.nodes_executed == 2
    assert sum(n.avg_ms for n in res.nodes) == pytest.approx(res.avg_ms, rel=0.01)
    assert not list((phone / "data/local/tmp/nse_hw").iterdir())


def test_device_config_errors(tmp_path):
    with pytest.raises(NseError, match="unknown device 'nokia3310'; known: .*pixel"):
        load_device_config("nokia3310")
    bad = tmp_path / "d.yaml"
    bad.write_text(json.dumps({"name": "x", "taskset": "zz"}))
    with pytest.raises(NseError, match="hex CPU mask"):
        load_device_config(bad)
    bad.write_text(json.dumps({"name": "x", "cores": 4}))
    with pytest.raises(NseError, match="unexpected keyword argument 'cores'"):
        load_device_config(bad)


@pytest.mark.slow
def test_real_export_timed_with_litert_on_the_fake_phone(phone, tmp_path, monkeypatch):
    """One real block: litert-torch export (profilers.units) pushed and timed by ai-edge-litert on the 'phone'."""
    from nse_hw.profilers.phone import litert_exports

    monkeypatch.setenv("FAKE_BENCH", "litert")
    sp = space_from_dict({**MINI, "pool": ["mb_k3_e1"]})
    key = space_keys(sp)[1]
    out = tmp_path / "t.json"
    res = profile_phone(sp, device_cfg=cfg(), out=out, progress=False,
                        export_fn=lambda keys: litert_exports(cache=tmp_path / "cache")([k for k in keys if k == key]))
    assert res.measured == [key]
    e = load_table(out).entries[key]
    assert e["source"] == "measured" and 0 < e["ms"] < 50 and e["n"] == 30


def test_int8_table_is_another_table(phone, space, tmp_path):
    out = tmp_path / "t.json"
    profile_phone(space, device_cfg=cfg(), out=out, export_fn=fake_exports(tmp_path / "x", []), progress=False)
    with pytest.raises(NseError, match="measured differently: precision='float32' \\(now 'int8'\\)"):
        profile_phone(space, device_cfg=cfg(), out=out, export_fn=fake_exports(tmp_path / "y", []), precision="int8")
    res = profile_phone(space, device_cfg=cfg(), out=tmp_path / "i8.json", export_fn=fake_exports(tmp_path / "z", []),
                        progress=False, precision="int8")
    m = load_table(res.path, precision="int8").meta
    assert (m["precision"], m["dtype"], m["threads"], m["phone"]["taskset"]) == ("int8", "int8", 1, "c")


@pytest.mark.slow
def test_real_int8_block_and_whole_int8_model_on_the_fake_phone(phone, tmp_path, monkeypatch):
    """An int8 block (export --int8's quantiser) pushed and timed by ai-edge-litert on the 'phone', then the same
    file profiled as a whole model."""
    from nse_hw.profilers.phone import litert_exports

    monkeypatch.setenv("FAKE_BENCH", "litert")
    sp = space_from_dict({**MINI, "pool": ["mb_k3_e1"]})
    key = space_keys(sp)[1]
    out = tmp_path / "t.json"
    export = litert_exports(cache=tmp_path / "cache", precision="int8")
    res = profile_phone(sp, device_cfg=cfg(), out=out, progress=False, precision="int8",
                        export_fn=lambda keys: export([k for k in keys if k == key]))
    assert res.measured == [key]
    e = load_table(out, precision="int8").entries[key]
    assert e["source"] == "measured" and 0 < e["ms"] < 50 and e["n"] == 30
    tflite = next((tmp_path / "cache").rglob("*_int8.tflite"))
    whole = profile_model(tflite, device_cfg=cfg())
    assert whole.count == 30 and whole.ms > 0
