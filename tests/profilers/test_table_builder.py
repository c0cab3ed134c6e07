import json
import os

import pytest
import torch
from nse_hw.profilers import pipeline, table_builder, timing
from nse_hw.profilers.speed import PROBE_KEY
from nse_hw.profilers.table_builder import profile_host
from nse_hw.profilers.timing import NULL_KEY, UnitTimer
from nse_hw.profilers.units import Add, ExportJob, build_unit, cache_path

from nse_hw.errors import NseError
from nse_hw.latency import load_table, parse_key, space_keys
from nse_hw.space import load_space
from tests.fixtures.spaces import MICRO_SPACE_YAML

FAST = {"warmup": 2, "runs": 5, "convert_cpus": set(), "progress": False}  # convert_cpus=set(): no 2nd core


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "micro.yaml"
    path.write_text(MICRO_SPACE_YAML)
    return load_space(path)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
def built(micro, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("tables") / "micro-ort.json"
    return profile_host(micro, runtime="onnxruntime", out=out, cache=cache, **FAST)


def test_units_build_every_tiny_key_with_its_shapes(tiny_space):
    for key in space_keys(tiny_space):
        spec = parse_key(key)
        model, (h, w, c) = build_unit(ExportJob.for_key(key))
        assert not model.training
        y = model(torch.zeros(1, c, h, w))
        if spec.kind == "classifier":
            assert y.shape == (1, spec.out)
        else:
            assert y.shape == (1, spec.out, -(-h // spec.stride), -(-w // spec.stride))


def test_units_are_seeded_and_add_joins_two_distinct_tensors():
    key = "mb_k3_e3|in=8x8x16|out=24|s=2"
    a, _ = build_unit(ExportJob.for_key(key))
    b, _ = build_unit(ExportJob.for_key(key))
    x = torch.randn(1, 16, 8, 8)
    torch.testing.assert_close(a(x), b(x))
    add, _ = build_unit(ExportJob.for_key("add|in=8x8x16"))
    assert isinstance(add, Add) and not torch.equal(add(x), 2 * x)
    with pytest.raises(ValueError, match="malformed latency key"):
        ExportJob.for_key("mb_k3|in=8x8|out=2")


@pytest.mark.slow
def test_build_measures_every_key_with_provenance(built, micro, cache):
    table = load_table(built.path)
    assert built.measured == len(space_keys(micro)) == 7 and built.skipped == 0
    assert list(table.entries) == space_keys(micro)
    for e in table.entries.values():
        assert e["source"] == "measured" and e["n"] == 5 and 0 <= e["p10"] <= e["ms"] <= e["p90"]
        assert e["ms"] > 0 or e["clamped"]  # net of the invocation overhead; tiny ops may reach 0
    m = table.meta
    assert (m["device"], m["runtime"], m["threads"], m["dtype"], m["batch"], m["statistic"]) == (
        "host", "onnxruntime", 1, "float32", 1, "median")
    assert (m["warmup"], m["runs"], m["spaces"], m["cpu_cache"]) == (2, 5, ["micro"], "evicted")
    assert m["evict_bytes"] > 2**20 and m["invoke_overhead"]["key"] == NULL_KEY and m["invoke_overhead"]["ms"] > 0
    assert m["runtime_version"] and m["tool_version"] and m["created"].endswith("+00:00")
    assert m["host"]["cpu"] and m["exporter"]["package"] == "onnx"
    for key in space_keys(micro):
        assert cache_path(ExportJob.for_key(key), runtime="onnxruntime", cache=cache).is_file()


@pytest.mark.slow
def test_interrupted_build_keeps_finished_entries_and_resumes(built, micro, cache, tmp_path, monkeypatch):
    out = tmp_path / "t.json"
    calls = []
    real = timing.summarize  # what UnitTimer summarises each entry's runs with

    def dies_on_third_entry(times):
        calls.append(1)
        if len(calls) == 4:  # the trivial model for the invocation overhead, then the entries
            raise KeyboardInterrupt  # like a kill in the middle of timing the third entry
        return real(times)

    monkeypatch.setattr(timing, "summarize", dies_on_third_entry)
    with pytest.raises(KeyboardInterrupt):  # no speed probe: saved after every entry (the probe's case: test_speed)
        profile_host(micro, runtime="onnxruntime", out=out, cache=cache, speed_probe=False, **FAST)
    saved = json.loads(out.read_text())  # valid JSON: every save was atomic
    assert list(saved["entries"]) == space_keys(micro)[:2] and "invoke_overhead" in saved["meta"]
    assert not [p for p in tmp_path.iterdir() if p.name != "t.json"]  # no temp files left behind
    monkeypatch.setattr(timing, "summarize", real)
    # every export is cached now: resuming must not start a converter
    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", lambda *a, **k: pytest.fail("re-converted"))
    res = profile_host(micro, runtime="onnxruntime", out=out, cache=cache, speed_probe=False, **FAST)
    assert (res.measured, res.skipped) == (5, 2)
    table = load_table(out)
    assert list(table.entries) == space_keys(micro)
    assert {k: table.entries[k] for k in saved["entries"]} == saved["entries"]  # not re-measured
    assert table.meta["invoke_overhead"] == saved["meta"]["invoke_overhead"]  # one overhead for all entries


@pytest.mark.slow
def test_existing_table_must_match_runtime_and_threads(built, micro, cache):
    with pytest.raises(NseError, match="measured differently: runtime="):
        profile_host(micro, runtime="litert", out=built.path, cache=cache, **FAST)
    with pytest.raises(NseError, match="threads=1 .asked 2"):
        profile_host(micro, runtime="onnxruntime", threads=2, out=built.path, cache=cache, **FAST)
    with pytest.raises(NseError, match="cpu_cache='evicted' .asked 'warm'"):
        profile_host(micro, runtime="onnxruntime", cpu_cache="warm", out=built.path, cache=cache, **FAST)


@pytest.mark.slow
def test_converter_can_run_ahead_of_timing_warm_mode(micro, tmp_path, monkeypatch, caplog):
    # the overlap path (a pinned converter process) on this process's own cores, to stay off the timing core
    fast = FAST | {"convert_cpus": os.sched_getaffinity(0)}
    loads = iter([3.0] + [1.0] * 6 + [2.5])  # a busy machine at the start, and again for the last entry
    monkeypatch.setattr(table_builder.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    res = profile_host(micro, runtime="onnxruntime", out=tmp_path / "t.json", cache=tmp_path / "c", cpu_cache="warm",
                       **fast)
    table = load_table(res.path)
    assert res.measured == 7 and len(table.entries) == 7
    assert table.meta["cpu_cache"] == "warm" and table.meta["evict_bytes"] is None
    assert table.meta["load_avg_1min"] == {"max": 3.0, "median_this_run": 1.0}  # provenance: it ran under load
    assert "load average 3.0" in caplog.text and "profile on a quiet machine" in caplog.text


@pytest.mark.slow
def test_litert_build_of_a_subset(micro, tmp_path):
    table_path = tmp_path / "t.json"
    table = load_table(profile_host(micro, runtime="litert", out=table_path, cache=tmp_path / "c", **FAST).path)
    assert table.meta["runtime"] == "litert" and len(table.entries) == 7
    files = list((tmp_path / "c").rglob("*.tflite"))
    assert len(files) == 9  # the entries, the trivial model and the speed probe
    assert table.meta["speed"]["reference_ms"] > 0 and all(e["probe_ms"] > 0 for e in table.entries.values())


@pytest.mark.slow
def test_prefetched_models_are_converted_not_timed(micro, tmp_path, monkeypatch):
    """--quick's calibration networks ride in the keys' export stream: cached afterwards, never a table entry."""
    import numpy as np

    net = ExportJob.for_arch(micro.sample(np.random.default_rng(0)))
    keys = space_keys(micro)[:3]
    timed = []
    real = UnitTimer.stats
    monkeypatch.setattr(UnitTimer, "stats", lambda self, path: timed.append(path) or real(self, path))
    res = profile_host(micro, runtime="onnxruntime", out=tmp_path / "t.json", cache=tmp_path / "c", only_keys=keys,
                       prefetch=[net, net], **FAST)
    table = load_table(res.path)
    assert res.measured == 3 and list(table.entries) == keys
    net_file = cache_path(net, runtime="onnxruntime", cache=tmp_path / "c")
    probe = cache_path(ExportJob.for_key(PROBE_KEY), runtime="onnxruntime", cache=tmp_path / "c")
    assert net_file.is_file() and net_file not in timed
    assert len([p for p in timed if p != probe]) == 4 and timed.count(probe) >= 2  # overhead, 3 keys; the probe


def test_bad_settings_fail_before_work(micro, tmp_path):
    with pytest.raises(NseError, match="warmup"):
        profile_host(micro, runtime="onnxruntime", out=tmp_path / "t.json", warmup=-1)
    with pytest.raises(NseError, match="unknown runtime"):
        profile_host(micro, runtime="tensorrt", out=tmp_path / "t.json")
    with pytest.raises(NseError, match="--cpu-cache"):
        profile_host(micro, runtime="onnxruntime", out=tmp_path / "t.json", cpu_cache="hot")
    (tmp_path / "file").write_text("")
    with pytest.raises(NseError, match="cannot create output directory"):
        profile_host(micro, runtime="onnxruntime", out=tmp_path / "file" / "t.json")


def test_converters_per_core_only_when_nothing_is_timed_meanwhile():
    assert pipeline.converters({0}, {1}) == 1  # ahead of the timer: one converter on the spare core
    assert pipeline.converters(set(), {0, 1}) == 2  # no spare core: all before timing, one per core
    assert pipeline.converters(set(), {0}) == 1
    assert pipeline.converters(set(), set(range(64))) == pipeline.MAX_CONVERTERS


def test_no_spare_core_converts_on_every_allowed_core(micro, tmp_path, monkeypatch):
    sizes = []
    real = pipeline.ProcessPoolExecutor
    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", lambda n, **kw: sizes.append(n) or real(n, **kw))
    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: {0, 1})
    jobs = [ExportJob.for_key(k) for k in space_keys(micro)[:2]]
    out = list(pipeline.exported(jobs, runtime="onnxruntime", cache=tmp_path / "c", convert_cpus=set(),
                                 progress=False))
    assert sizes == [2] and [j for j, _ in out] == jobs and all(p.is_file() for _, p in out)
