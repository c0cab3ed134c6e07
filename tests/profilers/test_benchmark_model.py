import collections
import shlex
from pathlib import Path

import pytest
from nse_hw.profilers.benchmark_model import BenchmarkParseError, benchmark_command, parse_benchmark_output

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "device-data"
PROFILE = SHARED / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"


@pytest.fixture(scope="module")
def real_log() -> str:
    if not PROFILE.is_file():
        pytest.skip(f"public device data not found at {SHARED} (the shared folder beside the repo)")
    return PROFILE.read_text()


def test_real_pixel1_profile(real_log):
    r = parse_benchmark_output(real_log)
    # the timed runs: "count=100 first=80068 curr=81025 min=79589 max=83607 avg=80670.2 std=871" (us)
    assert (r.count, r.avg_ms, r.std_ms, r.min_ms, r.max_ms) == (100, 80.6702, 0.871, 79.589, 83.607)
    assert r.warmup_avg_ms == 83.4966 and r.threads == 1 and r.init_ms == 47.967
    assert r.median_ms is None and r.statistic == "mean" and r.ms == r.avg_ms
    assert len(r.nodes) == 77 == r.nodes_executed
    types = collections.Counter(n.type for n in r.nodes)
    # the log's own "Summary by node type" section
    assert types == {"CONV_2D": 42, "DEPTHWISE_CONV_2D": 20, "ADD": 13, "AVERAGE_POOL_2D": 1, "RESHAPE": 1}
    assert r.nodes[0].name == "MNasNet/Conv/Relu6" and r.nodes[0].avg_ms == 3.246
    assert r.nodes[-1].type == "RESHAPE" and r.nodes[-1].cdf_percent == 100.0
    # the summary sums unrounded times; 42 rows rounded to 1 us each can differ by up to 0.021 ms
    assert sum(n.avg_ms for n in r.nodes if n.type == "CONV_2D") == pytest.approx(59.262, abs=0.021)
    assert sum(n.avg_ms for n in r.nodes) == pytest.approx(r.avg_ms, rel=0.002)


NEW_STYLE = """INFO: STARTING!
INFO: Num threads: [4]
INFO: TF Lite version: 2.16.1
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=9 first=91020 curr=55300 min=54900 max=91020 avg=60125.5 std=11800
INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=31500 curr=30900 min=30718 max=36410 avg=31118.1 std=1323 p5=30750 median=30990 p95=33000
INFO: Inference timings in us: Init: 21432, First inference: 91020, Warmup (avg): 60125.5, Inference (avg): 31118.1
"""


def test_new_style_with_percentiles_and_version():
    r = parse_benchmark_output(NEW_STYLE)
    assert r.count == 50 and r.threads == 4 and r.version == "2.16.1"
    assert (r.median_ms, r.p5_ms, r.p95_ms) == (30.99, 30.75, 33.0)
    assert r.ms == 30.99 and r.statistic == "median"
    assert r.warmup_avg_ms == 60.1255 and r.init_ms == 21.432
    assert r.entry_stats() == {"stat": "median", "avg": 31.1181, "std": 1.323, "min": 30.718, "max": 36.41,
                               "n": 50, "p5": 30.75, "p95": 33.0}


def test_all_same_runs():
    r = parse_benchmark_output("count=1 curr=40000\n\ncount=3 curr=512(all same)\n")
    assert (r.count, r.avg_ms, r.min_ms, r.max_ms, r.std_ms) == (3, 0.512, 0.512, 0.512, 0.0)
    assert r.warmup_avg_ms == 40.0


def test_unparseable_output_names_its_first_lines():
    with pytest.raises(BenchmarkParseError, match="cannot parse.*Segmentation fault \\| Aborted"):
        parse_benchmark_output("\nSegmentation fault\nAborted\n")


def test_command_quotes_every_word():
    cmd = benchmark_command("/data/local/tmp/benchmark_model", "/data/local/tmp/nse hw/a;b.tflite", threads=1,
                            warmup=5, runs=10, mask="c", op_profiling=True, extra_flags=("--use_xnnpack=true",))
    assert shlex.split(cmd) == ["taskset", "c", "/data/local/tmp/benchmark_model",
                                "--graph=/data/local/tmp/nse hw/a;b.tflite", "--num_threads=1", "--warmup_runs=5",
                                "--num_runs=10", "--enable_op_profiling=true", "--use_xnnpack=true"]
