"""Host tables know their CPU: another CPU's table is a warning in `latency predict`, a refusal in `search`
(unless --allow-other-host), `calibrate` and `profile --out`; this CPU's is used silently."""

import numpy as np

from nse_hw.hostcpu import parse_cpuinfo, this_cpu
from nse_hw.latency import LatencyTable, space_keys
from nse_hw.space import load_space, save_arch
from tests.fixtures.cli import assert_refused, invoke
from tests.fixtures.cpuinfo import INTEL_CPUINFO

INTEL = parse_cpuinfo(INTEL_CPUINFO)


def _table(path, fp, **meta):
    t = LatencyTable({"device": "host", "runtime": "litert", "threads": 1, "spaces": ["tiny"],
                      "host": {"cpu": fp["model_name"], "cpu_fingerprint": fp}, **meta})
    for key in space_keys(load_space("tiny")):
        t.set(key, ms=0.5, source="measured")
    t.save(path)
    return str(path)


def _arch(tmp_path):
    arch = load_space("tiny").sample(np.random.default_rng(0))
    save_arch(arch, tmp_path / "a.json")
    return str(tmp_path / "a.json")


def test_predict_warns_on_another_cpus_table(tmp_path):
    other = _table(tmp_path / "intel.json", INTEL)
    res = invoke("latency", "predict", _arch(tmp_path), "--table", other)
    assert res.exit_code == 0, res.output
    warn = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "another CPU" in warn[0] and "Sapphire Rapids" in warn[0] and "--quick" in warn[0]
    assert "total" in res.output  # still predicts
    mine = _table(tmp_path / "mine.json", this_cpu())
    res = invoke("latency", "predict", _arch(tmp_path), "--table", mine)
    assert res.exit_code == 0 and "warning:" not in res.output


def test_search_refuses_another_cpus_table(tmp_path):
    other = _table(tmp_path / "intel.json", INTEL)
    res = invoke("search", "--latency", "80ms", "--table", other, "--space", "tiny", "--out", tmp_path / "run")
    assert_refused(res, "was measured on another CPU")
    assert "--allow-other-host" in res.output and not (tmp_path / "run").exists()
    # allowed: it passes the CPU check (and stops at the next one: a budget below every network)
    res = invoke("search", "--latency", "0.01ms", "--table", other, "--space", "tiny", "--allow-other-host",
                 "--out", tmp_path / "run")
    assert_refused(res, "below the fastest architecture")
    mine = _table(tmp_path / "mine.json", this_cpu())
    res = invoke("search", "--latency", "0.01ms", "--table", mine, "--space", "tiny", "--out", tmp_path / "run")
    assert_refused(res, "below the fastest architecture")
    assert "warning:" not in res.output


def test_calibrate_and_profile_refuse_to_mix_cpus(tmp_path):
    other = _table(tmp_path / "intel.json", INTEL)
    assert_refused(invoke("latency", "calibrate", "--table", other), "refusing to calibrate")
    before = (tmp_path / "intel.json").read_bytes()
    from nse_hw.profilers.host import get_runner
    from nse_hw.profilers.table_builder import new_meta, open_table

    meta = new_meta(get_runner("litert", threads=1), warmup=1, runs=1, cpu_cache="warm", evictor=None)
    t = LatencyTable({**meta, "host": {**meta["host"], "cpu_fingerprint": INTEL}})
    t.set("add|in=8x8x8", ms=0.01, source="measured")
    t.save(tmp_path / "p.json")
    assert_refused(invoke("profile", "--device", "host", "--runtime", "litert", "--space", "tiny", "--warmup", 1,
                          "--runs", 1, "--cpu-cache", "warm", "--out", tmp_path / "p.json"),
                   "was measured on another CPU")
    assert (tmp_path / "intel.json").read_bytes() == before
    assert open_table(tmp_path / "absent.json", meta).entries == {}


def test_kernels_and_quick_options_are_checked(tmp_path):
    assert_refused(invoke("profile", "--device", "host", "--runtime", "onnxruntime", "--space", "tiny",
                          "--kernels", "builtin", "--out", tmp_path / "t.json"), "LiteRT op resolver choice")
    assert_refused(invoke("profile", "--device", "host", "--runtime", "litert", "--arch", _arch(tmp_path),
                          "--quick", "--out", tmp_path / "t.json"), "--quick profiles a --space")
    assert_refused(invoke("profile", "--device", "host", "--runtime", "litert", "--space", "tiny",
                          "--reference", "host-litert", "--out", tmp_path / "t.json"), "it needs --quick")
    assert not (tmp_path / "t.json").exists()
