"""The ExecuTorch phone path: xnn_executor_runner's command line and log parser, then profile_phone(runtime=
"executorch") end to end against the stand-in adb (tests/fixtures/fake_adb), as test_adb.py does for LiteRT."""

import json
import math
import shlex

import pytest
from fake_phone import FAKE_ADB_DIR as FAKE_DIR
from fake_phone import fake_exports, make_phone, phone_env
from fake_phone import pixel_cfg as cfg
from nse_hw.profilers.adb import ConnectionLost, connect
from nse_hw.profilers.benchmark_model import BenchmarkParseError
from nse_hw.profilers.executor_runner import parse_runner_output, runner_command
from nse_hw.profilers.phone import ensure_binary, profile_phone

from nse_hw.errors import NseError
from nse_hw.export import pte
from nse_hw.latency import load_table, space_keys

P = "I 00:00:00.{:06d} executorch:executor_runner.cpp:{}] "


def log(times, *, threads=1, total=None, extra=()):
    """An executor_runner log: threadpool, load, one line per execution, the total, an output tensor."""
    n = len(times)
    lines = [f"Resetting threadpool with num threads = {threads}", "Model file /d/m.pte is loaded.",
             "Using method forward", "Model loaded in 1.234000 ms."]
    lines += [f"Iteration {i + 1} of {n}: {t:f} ms" for i, t in enumerate(times)] + list(extra)
    lines.append(f"Model executed successfully {n} time(s) in {total or sum(times):f} ms.")
    out = "\n".join(P.format(100 + i, 500 + i) + ln for i, ln in enumerate(lines))
    return out + "\n1 outputs: \nOutputX 0: tensor(sizes=[1, 10], [0.1, 0.2])\n"


def test_parse_three_warmup_then_five_timed():
    r = parse_runner_output(log([9.0, 6.0, 6.0, 2.0, 4.0, 3.0, 5.0, 1.0]), warmup=3, runs=5)
    # timed: 2 4 3 5 1 -> sorted 1 2 3 4 5
    assert (r.count, r.median_ms, r.avg_ms, r.min_ms, r.max_ms, r.first_ms) == (5, 3.0, 3.0, 1.0, 5.0, 2.0)
    assert r.std_ms == pytest.approx(math.sqrt(2))  # population std, as benchmark_model's
    assert r.p5_ms == pytest.approx(1.2) and r.p95_ms == pytest.approx(4.8)  # linear between order statistics
    assert (r.warmup_avg_ms, r.threads, r.init_ms) == (7.0, 1, 1.234)
    assert r.extra == {"executions": 8, "total_ms": 36.0}
    assert r.ms == 3.0 and r.statistic == "median"
    assert r.entry_stats() == {"stat": "median", "avg": 3.0, "std": pytest.approx(math.sqrt(2)), "min": 1.0,
                               "max": 5.0, "n": 5, "p5": pytest.approx(1.2), "p95": pytest.approx(4.8)}


def test_parse_without_warmup_or_threadpool_line():
    text = "\n".join(ln for ln in log([2.0, 1.0, 4.0]).splitlines() if "threadpool" not in ln)
    r = parse_runner_output(text, warmup=0)
    assert (r.count, r.median_ms, r.first_ms, r.warmup_avg_ms, r.threads) == (3, 2.0, 2.0, None, None)


@pytest.mark.parametrize("text, warmup, says", [
    # an old runner: only the total, which would average the warm-up in; never divided by N
    ("\n".join(ln for ln in log([9.0, 1.0, 1.0]).splitlines() if "Iteration" not in ln), 1, "only the total"),
    ("Segmentation fault (fake)\nsomething else entirely", 1, "no 'Iteration N of M: T ms' lines"),
    ("", 1, "(no output)"),
    (log([9.0, 1.0, 1.0]).replace("Iteration 2 of 3", "Iteration 7 of 3"), 1, "out of order"),
    # a failed run: three of five executions, then ET_CHECK_MSG's abort (no total line)
    ("\n".join(log([9.0, 1.0, 1.0]).splitlines()[:7]).replace(" of 3:", " of 5:")
     + "\nE 00:00:00.2 executorch:executor_runner.cpp:700] Execution of method forward failed with status 0x1",
     1, "stopped after 3 of 5 executions"),
    (log([9.0, 1.0, 1.0]), 3, "3 executions leave none to time after 3 warm-up ones"),
])
def test_unreadable_logs_are_refused(text, warmup, says):
    with pytest.raises(BenchmarkParseError, match="cannot parse xnn_executor_runner output") as exc:
        parse_runner_output(text, warmup=warmup)
    assert says in str(exc.value)


def test_wrong_number_of_executions_is_refused():
    with pytest.raises(BenchmarkParseError, match="made 4 executions, not warmup \\+ runs = 5"):
        parse_runner_output(log([3.0, 1.0, 1.0, 1.0]), warmup=2, runs=3)


def test_command_line_quoted_and_pinned():
    cmd = runner_command("/data/local/tmp/xnn_executor_runner", "/data/local/tmp/nse hw/a|b.pte", threads=2,
                         warmup=3, runs=5, mask="c")
    assert shlex.split(cmd) == ["taskset", "c", "/data/local/tmp/xnn_executor_runner",
                                "--model_path=/data/local/tmp/nse hw/a|b.pte", "--num_executions=8", "--cpu_threads=2"]
    assert runner_command("/r", "/m.pte", threads=1, warmup=0, runs=1).split() == [
        "/r", "--model_path=/m.pte", "--num_executions=1", "--cpu_threads=1"]


# ---- end to end through the stand-in adb ----




def pte_exports(out_dir, calls):
    return fake_exports(out_dir, calls, suffix=".pte")


def test_profile_executorch_end_to_end(phone, space, tmp_path, monkeypatch):
    log_file = tmp_path / "adb.log"
    monkeypatch.setenv("FAKE_ADB_LOG", str(log_file))
    calls: list[str] = []
    out = tmp_path / "t.json"
    res = profile_phone(space, device_cfg=cfg(remote_dir="/data/local/tmp/nse hw"), out=out, runtime="executorch",
                        export_fn=pte_exports(tmp_path / "x", calls), progress=False)
    keys = space_keys(space)
    assert res.measured == keys == calls and res.skipped == 0
    t = load_table(out)
    assert set(t.entries) == set(keys)
    assert all(e["source"] == "measured" and e["n"] == 30 and e["stat"] == "median" for e in t.entries.values())
    # the fake runner's first three executions are 1.5-3x slower: dropped, so the max is within the noise
    assert all(e["max"] < 1.1 * e["ms"] for e in t.entries.values())
    by_len = sorted(keys, key=len)
    assert t.ms(by_len[0]) < t.ms(by_len[-1])  # time grows with the pushed file's size
    m = t.meta
    assert (m["device"], m["runtime"], m["threads"], m["warmup"], m["runs"]) == ("pixel", "executorch", 1, 3, 30)
    assert m["benchmark_binary"] == "/data/local/tmp/xnn_executor_runner" and "median" in m["statistic"]
    assert m["exporter"]["package"] == "executorch" and m["phone"]["taskset"] == "c"
    assert (phone / ".taskset_masks").read_text().split() == ["c"] * len(keys)
    pushed = [c[-1] for c in map(json.loads, log_file.read_text().splitlines()) if "push" in c]
    assert len(pushed) == len(keys) and all(p.startswith("/data/local/tmp/nse hw/") and p.endswith(".pte")
                                            for p in pushed)
    assert (phone / "data/local/tmp/nse hw").is_dir() and not list((phone / "data/local/tmp/nse hw").iterdir())
    # a tflite table is another table: refused, not mixed
    with pytest.raises(NseError, match="measured differently: runtime='executorch' \\(now 'tflite'\\)"):
        profile_phone(space, device_cfg=cfg(), out=out, export_fn=fake_exports(tmp_path / "y", []))


def test_default_table_name_and_int8(phone, space, tmp_path, monkeypatch):
    monkeypatch.setenv("NSE_HW_TABLES", str(tmp_path / "tables"))  # the user's table folder
    res = profile_phone(space, device_cfg=cfg(), runtime="executorch", precision="int8", progress=False,
                        export_fn=pte_exports(tmp_path / "x", []))
    assert res.path == tmp_path / "tables" / "pixel-executorch-int8.json"
    m = load_table(res.path, precision="int8").meta
    assert (m["runtime"], m["precision"], m["dtype"]) == ("executorch", "int8", "int8")


def test_dropped_connection_then_resume(phone, space, tmp_path, monkeypatch):
    out = tmp_path / "t.json"
    monkeypatch.setenv("FAKE_ADB_FAIL_AFTER", "16")  # setup takes ~9 calls, each entry 3
    calls: list[str] = []
    with pytest.raises(ConnectionLost, match="run the same command again to resume"):
        profile_phone(space, device_cfg=cfg(), out=out, runtime="executorch", progress=False,
                      export_fn=pte_exports(tmp_path / "x", calls))
    first = load_table(out).entries
    keys = space_keys(space)
    assert 0 < len(first) < len(keys)
    monkeypatch.delenv("FAKE_ADB_FAIL_AFTER")
    calls.clear()
    res = profile_phone(space, device_cfg=cfg(), out=out, runtime="executorch", progress=False,
                        export_fn=pte_exports(tmp_path / "y", calls))
    assert res.skipped == len(first) and res.measured == calls == [k for k in keys if k not in first]
    final = load_table(out).entries
    assert set(final) == set(keys) and all(final[k] == first[k] for k in first)


def test_missing_runner_then_pushed(tmp_path, monkeypatch, space):
    root = make_phone(tmp_path / "phone", with_runner=False)
    phone_env(monkeypatch, root)
    with pytest.raises(NseError, match="no executable xnn_executor_runner at /data/local/tmp/xnn_executor_runner "
                                       "on FAKE0001; build ExecuTorch's xnn_executor_runner for Android arm64.*"
                                       "pass --benchmark-binary PATH to push it"):
        profile_phone(space, device_cfg=cfg(), runtime="executorch", out=tmp_path / "t.json",
                      export_fn=pte_exports(tmp_path, []))
    assert not (tmp_path / "t.json").exists()
    local = FAKE_DIR / "phone" / "xnn_executor_runner"
    et = cfg(runtime="executorch", executorch_runner="/data/local/tmp/et bin/runner")
    assert ensure_binary(connect(), et, local) == "/data/local/tmp/et bin/runner"
    pushed = root / "data/local/tmp/et bin/runner"
    assert pushed.read_bytes() == local.read_bytes() and pushed.stat().st_mode & 0o777 == 0o755
    res = profile_phone(space, device_cfg=et, out=tmp_path / "t.json", export_fn=pte_exports(tmp_path, []),
                        progress=False)
    assert load_table(res.path).meta["runtime"] == "executorch" and len(res.measured) == len(space_keys(space))


@pytest.mark.parametrize("mode, says", [("garbage", "Segmentation fault \\(fake\\) \\| something else"),
                                        ("old", "only the total")])
def test_unreadable_runner_output(phone, space, tmp_path, monkeypatch, mode, says):
    monkeypatch.setenv("FAKE_RUNNER", mode)
    with pytest.raises(BenchmarkParseError, match=says):
        profile_phone(space, device_cfg=cfg(), runtime="executorch", out=tmp_path / "t.json",
                      export_fn=pte_exports(tmp_path, []))
    assert load_table(tmp_path / "t.json").entries == {}  # provenance saved, nothing measured


def test_a_failed_run_is_one_line(phone, space, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RUNNER", "abort")  # the third execution fails: ET_CHECK_MSG aborts
    with pytest.raises(NseError, match="xnn_executor_runner failed on .*Execution of method forward failed"):
        profile_phone(space, device_cfg=cfg(), runtime="executorch", out=tmp_path / "t.json",
                      export_fn=pte_exports(tmp_path, []))
    assert load_table(tmp_path / "t.json").entries == {}


def test_bad_runtime_and_config(phone, space, tmp_path, monkeypatch):
    with pytest.raises(NseError, match="runtime must be tflite or executorch, got 'onnxruntime'"):
        profile_phone(space, device_cfg=cfg(), runtime="onnxruntime", out=tmp_path / "t.json",
                      export_fn=pte_exports(tmp_path, []))
    with pytest.raises(NseError, match="phone paths must be absolute, got 'xnn_executor_runner'"):
        cfg(executorch_runner="xnn_executor_runner")
    monkeypatch.setattr(pte, "executorch_available", lambda: False)  # the default export needs ExecuTorch
    with pytest.raises(NseError, match="ExecuTorch is not installed"):
        profile_phone(space, device_cfg=cfg(), runtime="executorch", out=tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()
