"""Where tables are looked up and written: the user's folder ($NSE_HW_TABLES here) before the shipped one."""

import json
import shutil

import pytest

from nse_hw import paths
from nse_hw.errors import NseError
from nse_hw.hostcpu import cpu_id, parse_cpuinfo
from nse_hw.latency import load_table
from nse_hw.latency.hosttables import default_profile_out
from nse_hw.latency.table import known_tables, resolve_table_path, table_for_device
from tests.fixtures.cli import invoke as run
from tests.fixtures.cpuinfo import INTEL_CPUINFO

INTEL = parse_cpuinfo(INTEL_CPUINFO)  # not the shipped host tables' CPU


@pytest.fixture
def mine(tmp_path, monkeypatch):
    folder = tmp_path / "my-tables"
    monkeypatch.setenv("NSE_HW_TABLES", str(folder))
    return folder


def test_in_the_checkout_new_tables_go_beside_the_shipped_ones(monkeypatch):
    monkeypatch.delenv("NSE_HW_TABLES", raising=False)
    assert paths.user_tables() == paths.TABLES and paths.table_dirs() == [paths.TABLES]


def test_outside_a_checkout_new_tables_go_to_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("NSE_HW_TABLES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(paths, "TABLES", tmp_path / "site-packages" / "nse_hw" / "latency_tables")
    assert paths.user_tables() == tmp_path / "data" / "nse-hw" / "latency_tables"
    assert paths.table_dirs() == [paths.user_tables(), paths.TABLES]


def test_a_users_table_is_found_by_name_and_shadows_the_shipped_one(mine):
    assert paths.table_dirs() == [mine, paths.TABLES]
    assert resolve_table_path("pixel1-tflite") == paths.TABLES / "pixel1-tflite.json"  # none of the user's yet
    mine.mkdir()
    shutil.copy(paths.TABLES / "pixel1-tflite.json", mine / "pixel1-tflite.json")
    shutil.copy(paths.TABLES / "pixel1-tflite.json", mine / "myphone-tflite.json")
    assert resolve_table_path("pixel1-tflite") == mine / "pixel1-tflite.json"
    assert table_for_device("pixel1") == mine / "pixel1-tflite.json"
    assert table_for_device("myphone") == mine / "myphone-tflite.json"
    assert table_for_device("note10") == paths.TABLES / "note10-tflite.json"  # only shipped
    assert {"myphone-tflite", "pixel1-tflite", "note10-tflite"} <= set(known_tables())
    with pytest.raises(NseError, match=f"no latency table for device 'nophone' in {mine} or {paths.TABLES}"):
        table_for_device("nophone")


def test_profile_writes_to_the_users_folder_never_over_another_cpus_shipped_table(mine):
    assert load_table("host-litert").meta["host"]["cpu"] == "AMD EPYC"
    assert default_profile_out(INTEL, runtime="litert") == mine / f"host-litert-{cpu_id(INTEL)}.json"
    assert default_profile_out(INTEL, runtime="litert", quick=True) == mine / f"host-litert-{cpu_id(INTEL)}-quick.json"


def test_tables_list_shows_both_folders_and_what_is_hidden(mine):
    mine.mkdir()
    d = json.loads((paths.TABLES / "pixel1-tflite.json").read_text())
    (mine / "pixel1-tflite.json").write_text(json.dumps(d))
    res = run("tables", "list")
    assert res.exit_code == 0, res.output
    assert f"new tables go to: {mine}" in res.output and f"yours: {mine}" in res.output
    assert f"shipped: {paths.TABLES}" in res.output
    assert "pixel1, tflite, float32 (hidden by yours)" in res.output
