"""Precision and thread count are properties of a table: recorded in meta, and a table of another is refused."""

import pytest

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table
from nse_hw.latency.table import check_precision, check_table, table_for_device, table_precision

META = {"device": "host", "runtime": "litert", "threads": 1, "batch": 1, "warmup": 1, "runs": 1}


def _save(path, **meta):
    t = LatencyTable(META | meta, {"stem": {"ms": 1.0, "source": "measured"}}, path)
    t.save()
    return path


def test_precision_from_meta_dtype_or_float32():
    assert table_precision({"precision": "int8", "dtype": "int8"}) == "int8"
    assert table_precision({"dtype": "float32"}) == "float32"
    assert table_precision({}) == "float32"  # every table before int8 tables existed
    assert check_precision("int8") == "int8"
    with pytest.raises(NseError, match="'fp16' is not one of float32, int8"):
        check_precision("fp16")


def test_load_refuses_another_precision_or_thread_count(tmp_path):
    f32 = _save(tmp_path / "f.json", dtype="float32")
    i8 = _save(tmp_path / "i.json", dtype="int8", precision="int8")
    assert load_table(f32, precision="float32").entries and load_table(i8, precision="int8").entries
    with pytest.raises(NseError, match="holds float32 latencies, not int8.*--precision int8"):
        load_table(f32, precision="int8")
    with pytest.raises(NseError, match="holds int8 latencies, not float32"):
        load_table(i8, precision="float32")
    with pytest.raises(NseError, match="measured with 1 thread\\(s\\), not 2.*--threads 2"):
        load_table(f32, threads=2)
    with pytest.raises(NseError, match="precision"):
        check_table(load_table(i8), precision="int4")


def test_meta_precision_is_checked(tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(NseError, match="meta 'precision' is 'int4'"):
        _save(path, precision="int4")
    assert not path.exists()


def test_a_table_of_another_precision_is_never_merged(tmp_path):
    path = _save(tmp_path / "t.json", dtype="float32")
    with pytest.raises(NseError, match="now holds dtype='float32', not 'int8'"):
        LatencyTable(META | {"dtype": "int8"}, {}, path).save()


def test_device_int8_table_by_name_or_a_refusal(tmp_path, monkeypatch):
    monkeypatch.setenv("NSE_HW_TABLES", str(tmp_path))  # the user's table folder, searched first
    _save(tmp_path / "phone-tflite.json")
    with pytest.raises(NseError, match="no int8 latency table for device 'phone'.*--precision int8"):
        table_for_device("phone", precision="int8")
    _save(tmp_path / "phone-tflite-int8.json", dtype="int8", precision="int8")
    assert table_for_device("phone", precision="int8").name == "phone-tflite-int8.json"
    assert table_for_device("phone").name == "phone-tflite.json"
