"""--precision and table thread counts on the CLI: bad input is one line and exit 2, nothing written."""

from nse_hw.latency import LatencyTable, space_keys
from nse_hw.space import load_space
from tests.fixtures.cli import assert_refused, invoke


def _table(path, **meta):
    t = LatencyTable({"device": "host", "runtime": "litert", "threads": 1, **meta})
    for key in space_keys(load_space("tiny")):
        t.set(key, ms=0.01, source="measured")
    t.save(path)
    return str(path)


def test_unknown_precision_is_refused(tmp_path):
    out = tmp_path / "t.json"
    for cmd in (["profile", "--device", "host", "--runtime", "litert", "--space", "tiny", "--out", out],
                ["latency", "validate", "--table", "host-litert"], ["search", "--latency", "80ms"]):
        assert_refused(invoke(*cmd, "--precision", "fp16"), "'fp16' is not one of")
    assert not out.exists()


def test_int8_needs_litert(tmp_path):
    out = tmp_path / "t.json"
    assert_refused(invoke("profile", "--device", "host", "--runtime", "onnxruntime", "--space", "tiny",
                          "--precision", "int8", "--out", out), "litert or executorch only")
    assert not out.exists()


def test_a_table_of_another_precision_or_thread_count_is_refused(tmp_path):
    f32 = _table(tmp_path / "f32.json", dtype="float32")
    i8 = _table(tmp_path / "i8.json", dtype="int8", precision="int8")
    assert_refused(invoke("latency", "validate", "--table", f32, "--precision", "int8", "--samples", 1),
                   "holds float32 latencies, not int8")
    assert_refused(invoke("latency", "calibrate", "--table", i8, "--precision", "float32"),
                   "holds int8 latencies, not float32")
    assert_refused(invoke("latency", "validate", "--table", f32, "--threads", 2, "--samples", 1),
                   "measured with 1 thread(s), not 2")
    # profiling more entries into a table of the other precision
    assert_refused(invoke("profile", "--device", "host", "--runtime", "litert", "--space", "tiny", "--out", i8),
                   "dtype='int8' (asked 'float32')")


def test_search_int8_against_a_device_without_one_or_a_float_table(tmp_path):
    f32 = _table(tmp_path / "f32.json", dtype="float32")
    assert_refused(invoke("search", "--latency", "80ms", "--precision", "int8", "--device", "nosuchphone",
                          "--out", tmp_path / "run"), "no int8 latency table for device 'nosuchphone'")
    assert_refused(invoke("search", "--latency", "80ms", "--precision", "int8", "--table", f32,
                          "--out", tmp_path / "run"), "holds float32 latencies, not int8")
    assert not (tmp_path / "run").exists()
