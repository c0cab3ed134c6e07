"""Which host table is this CPU's: names, the default table of a command, and profile's default output."""

from nse_hw.hostcpu import cpu_id, parse_cpuinfo
from nse_hw.latency import LatencyTable
from nse_hw.latency.hosttables import (
    default_host_table,
    default_profile_out,
    host_table_name,
    tables_of_cpu,
)
from tests.fixtures.cpuinfo import AMD_CPUINFO, INTEL_CPUINFO

AMD, INTEL = parse_cpuinfo(AMD_CPUINFO), parse_cpuinfo(INTEL_CPUINFO)


def _table(path, fp, *, created="2026-12-01T00:00:00+00:00", quick=False, precision="float32", kernels=None):
    meta = {"device": "host", "runtime": "litert", "threads": 1, "precision": precision, "created": created,
            "host": {"cpu": fp["model_name"], "cpu_fingerprint": fp}}
    if quick:
        meta["quick"] = {"measured": 1}
    if kernels:
        meta["kernels"] = kernels
    t = LatencyTable(meta)
    t.set("add|in=8x8x8", ms=0.01, source="measured")
    t.save(path)
    return path


def test_host_table_name():
    assert host_table_name("litert") == "host-litert"
    assert host_table_name("litert", precision="int8", threads=2, kernels="builtin", cpu="cpu-12345678",
                           quick=True) == "host-litert-int8-t2-builtin-cpu-12345678-quick"
    assert host_table_name("onnxruntime", kernels="xnnpack") == "host-onnxruntime"


def test_default_table_prefers_this_cpus_full_then_newest(tmp_path):
    shipped = _table(tmp_path / "host-litert.json", AMD)
    assert default_host_table(INTEL, runtime="litert", root=tmp_path) == shipped  # none of its own: shipped name
    quick = _table(tmp_path / f"host-litert-{cpu_id(INTEL)}-quick.json", INTEL, quick=True)
    assert default_host_table(INTEL, runtime="litert", root=tmp_path) == quick
    old = _table(tmp_path / f"host-litert-{cpu_id(INTEL)}.json", INTEL, created="2026-11-01T00:00:00+00:00")
    new = _table(tmp_path / "host-litert-mine.json", INTEL, created="2026-12-02T00:00:00+00:00")
    assert tables_of_cpu(INTEL, runtime="litert", root=tmp_path) == [new, old, quick]
    assert default_host_table(AMD, runtime="litert", root=tmp_path) == shipped
    # another precision or kernel path is another table
    assert default_host_table(INTEL, runtime="litert", precision="int8", root=tmp_path).name == "host-litert-int8.json"
    b = _table(tmp_path / "host-litert-b.json", INTEL, kernels="builtin")
    assert default_host_table(INTEL, runtime="litert", kernels="builtin", root=tmp_path) == b


def test_default_profile_out_never_extends_another_cpus_table(tmp_path):
    assert default_profile_out(INTEL, runtime="litert", root=tmp_path) == tmp_path / "host-litert.json"  # absent
    _table(tmp_path / "host-litert.json", AMD)
    assert default_profile_out(AMD, runtime="litert", root=tmp_path) == tmp_path / "host-litert.json"
    assert default_profile_out(INTEL, runtime="litert", root=tmp_path) == tmp_path / f"host-litert-{cpu_id(INTEL)}.json"
    assert default_profile_out(AMD, runtime="litert", quick=True, precision="int8", root=tmp_path) == \
        tmp_path / f"host-litert-int8-{cpu_id(AMD)}-quick.json"
