"""A table refuses impossible entries and metadata, and concurrent writers never lose each other's entries."""

import json
import multiprocessing as mp
import os
import threading
import time

import pytest

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table
from nse_hw.latency.lock import lock_path, table_lock
from nse_hw.latency.table import TABLE_FORMAT, merge_entries

META = {"device": "host", "runtime": "litert", "threads": 1}
GOOD = {"ms": 1.5, "p10": 1.4, "p90": 1.7, "n": 10, "source": "measured"}
STEM = "conv_k3|in=224x224x3|out=32|s=2"


def _write(path, entries=None, meta=None, **top):
    doc = {"format": TABLE_FORMAT, "meta": META if meta is None else meta,
           "entries": {STEM: GOOD} if entries is None else entries, **top}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("field, value, says", [
    ("ms", -500.0, "ms -500.0"),
    ("ms", True, "ms True"), ("ms", "3.2", "ms '3.2'"), ("ms", None, "ms None"), ("ms", 10**400, "ms 1000"),
    ("p10", -1.0, "p10 -1.0"), ("p90", "x", "p90 'x'"), ("p10", 1.6, "p10 1.6 <= ms 1.5"),
    ("n", 2.5, "n 2.5"), ("n", True, "n True"), ("n", -1, "n -1"),
    ("source", "guessed", "source 'guessed'"), ("source", None, "source None"),
])
def test_bad_entry_is_refused_naming_file_and_key(tmp_path, field, value, says):
    path = _write(tmp_path / "t.json", {STEM: GOOD | {field: value}})
    with pytest.raises(NseError) as err:
        load_table(path)
    msg = str(err.value)
    assert str(path) in msg and f"entry {STEM!r}" in msg and says in msg and "\n" not in msg


@pytest.mark.parametrize("literal, says", [("NaN", "NaN is not a JSON number"), ("-Infinity", "-Infinity is not"),
                                           ("1e999", f"entry {STEM!r} has ms inf")])
def test_non_finite_ms_in_the_file(tmp_path, literal, says):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": TABLE_FORMAT, "meta": META, "entries": {STEM: GOOD | {"ms": 0}}})
                    .replace('"ms": 0', f'"ms": {literal}'))
    with pytest.raises(NseError, match=says) as err:
        load_table(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("entry", [[1.0], 3.0, "x", None])
def test_entry_that_is_not_an_object(tmp_path, entry):
    with pytest.raises(NseError, match=f"entry {STEM!r} is"):
        load_table(_write(tmp_path / "t.json", {STEM: entry}))


@pytest.mark.parametrize("key, value", [
    ("threads", "1"), ("threads", 0), ("threads", True), ("runtime", 3), ("device", ""), ("runs", 0),
    ("warmup", -1), ("batch", 1.0), ("spaces", "tiny"), ("spaces", [1]), ("imports", {}),
    ("calibration", {"slope": 10**400, "intercept_ms": 0.0}), ("calibration", {"slope": 1.0}),
    ("calibration", {"slope": -2.0, "intercept_ms": 0.0}), ("calibration", [1, 2]),
    ("invoke_overhead", {"ms": -0.1}), ("transfer", "model"),
    ("setup", "pixel"), ("setup", {"name": ""}), ("setups", []),
    ("setups", {"readme": {"map": {"form": "constant", "coef": {"factor": -0.5}}}}),
    ("setups", {"readme": {"map": {"form": "cubic", "coef": {"factor": 0.9}}}}), ("setups", {"readme": {}}),
])
def test_bad_meta_is_refused_naming_the_key(tmp_path, key, value):
    with pytest.raises(NseError, match=f"meta {key!r} is"):
        load_table(_write(tmp_path / "t.json", meta=META | {key: value}))


@pytest.mark.parametrize("content, says", [
    (b"[" * 100_000 + b"]" * 100_000, "too deeply"),
    (b'{"format": "nse-hw/latency-table/1", "meta": {}, "entries": {"k": ' + b"[" * 200 + b"]" * 200 + b"}}",
     "too deeply"),
    ("{\"format\": \"caf\u00e9\"}".encode("latin-1"), "not UTF-8"),
    (b"[1, 2]", "a JSON list, not an object"), (b"null", "a JSON NoneType"), (b"3", "a JSON int"),
    (b"{oops", "is not JSON"),
    (b'{"format": "nse-hw/latency-table/1", "meta": [], "entries": {}}', "needs 'meta' and 'entries'"),
])
def test_malformed_files_are_one_line_errors(tmp_path, content, says):
    (tmp_path / "t.json").write_bytes(content)
    with pytest.raises(NseError, match=says) as err:
        load_table(tmp_path / "t.json")
    assert "\n" not in str(err.value)
    with pytest.raises(NseError, match="is a directory"):
        load_table(tmp_path)  # a directory given as a table


def test_shipped_tables_pass_the_checks():
    from nse_hw.paths import TABLES

    for path in TABLES.glob("*.json"):
        assert load_table(path).entries


def test_set_and_save_refuse_bad_values_and_leave_the_file(tmp_path):
    t = LatencyTable(dict(META), {}, tmp_path / "t.json")
    t.set(STEM, ms=2, source="measured", n=3)
    t.save()
    before = (tmp_path / "t.json").read_bytes()
    for ms, source in [(-500.0, "imported"), (float("nan"), "measured"), (True, "measured"), ("2", "measured"),
                       (1.0, "guessed")]:
        with pytest.raises(NseError, match=f"latency table .*t.json: entry {STEM!r} has"):
            t.set(STEM, ms=ms, source=source)
    t.entries["head|in=7x7x320|out=1280"] = {"ms": -1.0, "source": "measured"}  # written past set()
    with pytest.raises(NseError, match="not written"):
        t.save()
    assert (tmp_path / "t.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]  # no temp or lock file left


def _entry(ms, source="measured"):
    return {"ms": ms, "n": 5, "source": source}


def test_stale_writer_keeps_the_other_writers_entries(tmp_path):
    # profile holds a copy read before `tables import` added an entry, then saves its next measurement
    path = tmp_path / "t.json"
    LatencyTable(dict(META), {"a": _entry(1.0)}, path).save()
    profile = load_table(path)
    importer = load_table(path)
    importer.set("b", ms=2.0, source="imported")
    importer.meta.setdefault("imports", []).append({"source": "x.yaml"})
    importer.save()
    profile.set("c", ms=3.0, source="measured")
    profile.meta["spaces"] = ["micro"]
    profile.save()
    disk = load_table(path)
    assert set(disk.entries) == {"a", "b", "c"} and disk.meta["imports"] == [{"source": "x.yaml"}]
    assert disk.meta["spaces"] == ["micro"]
    assert set(profile.entries) == {"a", "b", "c"}  # the saving copy now holds the merged table
    importer.set("d", ms=4.0, source="imported")
    importer.save()  # the importer was stale too
    assert set(load_table(path).entries) == {"a", "b", "c", "d"}


def test_conflicting_key_measured_beats_imported_else_newer_wins(tmp_path):
    path = tmp_path / "t.json"
    LatencyTable(dict(META), {}, path).save()
    profile, importer = load_table(path), load_table(path)
    profile.set("k", ms=1.0, source="measured")
    profile.save()
    importer.set("k", ms=9.0, source="imported")
    importer.save()
    assert load_table(path).entries["k"]["ms"] == 1.0  # measured beats imported, whoever writes last
    second = load_table(path)
    profile.set("k", ms=1.2, source="measured")
    profile.save()
    second.set("k", ms=1.1, source="measured")
    second.save()
    assert load_table(path).entries["k"]["ms"] == 1.1  # same source: the newer write
    stale = load_table(path)
    stale.meta["note"] = "x"  # changed meta only: its (unchanged) entry must not undo a newer write
    fresh = load_table(path)
    fresh.set("k", ms=1.3, source="measured")
    fresh.save()
    stale.save()
    assert load_table(path).entries["k"]["ms"] == 1.3 and load_table(path).meta["note"] == "x"


def test_merge_entries_rules():
    base = {"k": _entry(1.0, "predicted")}
    assert merge_entries({"k": _entry(2.0, "predicted")}, {"k": _entry(1.0, "predicted")}, base)["k"]["ms"] == 2.0
    assert merge_entries({"k": _entry(2.0, "measured")}, {"k": _entry(3.0, "imported")}, base)["k"]["ms"] == 2.0
    assert merge_entries({"k": _entry(2.0, "imported")}, {"k": _entry(3.0, "measured")}, base)["k"]["ms"] == 3.0
    assert merge_entries({}, {"k": _entry(1.0, "predicted")}, base) == base  # never dropped


def test_merge_refuses_a_table_of_another_device(tmp_path):
    path = tmp_path / "t.json"
    LatencyTable(dict(META), {}, path).save()
    mine = load_table(path)
    LatencyTable(META | {"runtime": "onnxruntime"}, {}, path).save(replace=True)
    mine.set("k", ms=1.0, source="measured")
    with pytest.raises(NseError, match="now holds runtime='onnxruntime'"):
        mine.save()


def test_stale_temp_files_are_swept_under_the_lock(tmp_path):
    path = _write(tmp_path / "t.json")
    (tmp_path / ".t.json.abc123.tmp").write_text("{half")  # a writer killed between write and rename
    (tmp_path / ".other.json.x.tmp").write_text("")  # another table's: not ours to touch
    table = load_table(path)
    table.set("k", ms=1.0, source="measured")
    table.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.x.tmp", "t.json"]


def _hold_lock(path, ready, release):
    with table_lock(path):
        ready.set()
        release.wait(30)
        table = load_table(path)
        table.set("from_other_process", ms=1.0, source="imported")
        table.save()


def test_a_second_process_waits_for_the_lock_and_both_entries_survive(tmp_path):
    path = tmp_path / "t.json"
    LatencyTable(dict(META), {}, path).save()
    mine = load_table(path)  # read before the other process writes
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(path, ready, release))
    other.start()
    try:
        assert ready.wait(30)
        assert lock_path(path).exists()
        mine.set("from_this_process", ms=2.0, source="measured")
        threading.Timer(0.5, release.set).start()
        start = time.monotonic()
        mine.save()  # blocks until the other process has written and let go
        assert time.monotonic() - start >= 0.4
    finally:
        release.set()
        other.join(30)
    assert other.exitcode == 0
    assert set(load_table(path).entries) == {"from_other_process", "from_this_process"}
    assert not lock_path(path).exists() and sorted(os.listdir(tmp_path)) == ["t.json"]


def test_lock_is_reentrant_in_one_process(tmp_path):
    path = tmp_path / "t.json"
    with table_lock(path):
        LatencyTable(dict(META), {"a": _entry(1.0)}, path).save()  # save takes the same lock inside
        assert lock_path(path).exists()
    assert not lock_path(path).exists()
