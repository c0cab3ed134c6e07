import json

import pytest
from nse_hw.profilers.netbench import sample_archs
from nse_hw.profilers.units import arch_hash

from nse_hw.latency import load_table, predict, space_keys
from nse_hw.space import load_space
from tests.fixtures.cli import invoke as run
from tests.fixtures.spaces import MICRO_SPACE_YAML

FAST = ["--warmup", "2", "--runs", "5", "--convert-cpus", "none"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The micro space's shape at a size a fit can see, its onnxruntime table built through the CLI, and a shared
    export cache.

    At the micro space's own 16 px the three calibration networks differ by ~2 us of LUT sum under ~20 us of
    per-call cost, so machine noise alone could give the affine fit a negative slope (CI saw it). 64 px and 32
    channels make the two ops differ by ~0.2 ms a slot. Warm timing: evicted entries (net of a cold invocation)
    can clamp to 0 on a busy machine (evicted mode: test_table_builder).
    """
    d = tmp_path_factory.mktemp("cli")
    (d / "micro.yaml").write_text(MICRO_SPACE_YAML.replace("[16, 16, 3]", "[64, 64, 3]").replace("out: 8", "out: 32")
                                  .replace("mb_k3_e3]", "mb_k3_e6]"))
    res = run("profile", "--device", "host", "--runtime", "onnxruntime", "--space", d / "micro.yaml",
              "--out", d / "t.json", "--cache", d / "cache", "--cpu-cache", "warm", *FAST)
    assert res.exit_code == 0, res.output
    return d


@pytest.mark.slow
def test_profile_writes_the_table(setup):
    table = load_table(setup / "t.json")
    assert list(table.entries) == space_keys(load_space(setup / "micro.yaml"))
    assert table.meta["runtime"] == "onnxruntime" and table.meta["runs"] == 5 and table.meta["cpu_cache"] == "warm"


@pytest.mark.slow
def test_calibrate_then_validate_on_other_networks(setup):
    common = ["--table", setup / "t.json", "--cache", setup / "cache", "--convert-cpus", "none"]
    # an affine fit needs LUT sums far apart next to timing noise: the seed whose three draws are most evenly apart
    # (and that leaves out the all-skip network validated below by --arch)
    space, table = load_space(setup / "micro.yaml"), load_table(setup / "t.json")
    arch = space.arch([(), ()])
    def least_gap(seed):
        draws = sample_archs(space, samples=3, seed=seed)
        if arch_hash(arch) in {arch_hash(a) for a in draws}:
            return 0.0
        sums = sorted(predict(a, table).lut_sum_ms for a in draws)
        return min(b - a for a, b in zip(sums[:-1], sums[1:], strict=True))
    cal_seed = max(range(100), key=least_gap)
    assert least_gap(cal_seed) > 0.05  # ms; the two ops differ by ~0.4 ms a slot in the table
    res = run("latency", "calibrate", *common, "--samples", 3, "--seed", cal_seed, "--json")
    assert res.exit_code == 0, res.output
    cal = json.loads(res.stdout)
    assert cal["n"] == 3 and cal["seed"] == cal_seed and len(cal["arch_hashes"]) == 3 and "loo_mape" in cal
    assert load_table(setup / "t.json").meta["calibration"]["slope"] == cal["slope"]

    res = run("latency", "validate", *common, "--samples", 2, "--seed", cal_seed)
    assert res.exit_code == 2 and f"seed {cal_seed}" in res.output  # the calibration's own networks

    (setup / "a.json").write_text(arch.dumps())
    # the micro space has only 16 networks: take the first seed whose draws the calibration did not use
    used = set(cal["arch_hashes"]) | {arch_hash(arch)}
    seed = next(s for s in range(100) if not {arch_hash(a) for a in sample_archs(space, samples=2, seed=s)} & used)
    res = run("latency", "validate", *common, "--samples", 2, "--seed", seed, "--arch", setup / "a.json", "--json",
              "--plot", setup / "v.png", "--out-json", setup / "v.json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep == json.loads((setup / "v.json").read_text())
    drift = rep["drift"]  # the calibration's first networks re-timed first: how far the machine moved since
    assert drift["then_ms"] == [pt["measured_ms"] for pt in cal["points"][:3]] and len(drift["now_ms"]) == 3
    ratios = sorted(n / t for n, t in zip(drift["now_ms"], drift["then_ms"], strict=True))
    assert drift["median_ratio"] == pytest.approx(ratios[1])
    assert "check networks, re-timed now, take" in res.stderr
    assert drift["drifted"] == ("warning: " in res.stderr)
    assert (setup / "v.png").read_bytes()[:4] == b"\x89PNG"
    assert len(rep["archs"]) == 3 and rep["archs"][0]["label"].endswith("a.json")
    assert (rep["runtime"], rep["threads"], rep["runs"], rep["seed"]) == ("onnxruntime", 1, 5, seed)
    for kind in ("raw", "calibrated", "as_timed"):  # as_timed: the speed probe's scaling left out
        s = rep["summary"][kind]
        assert s["n"] == 3 and set(s) >= {"within_10pct", "mape", "max_abs_pct_err", "bias_pct"}
    table_speed = load_table(setup / "t.json").meta["speed"]  # the profile timed its probe: so did validate
    assert rep["speed"]["reference_ms"] == table_speed["reference_ms"] and rep["speed"]["probe_ratio"] > 0
    assert drift["probe_ratio"] > 0 and all(r["as_timed_ms"] > 0 for r in rep["archs"])
    r = rep["archs"][1]
    assert r["err_pct_raw"] == pytest.approx(100 * (r["lut_sum_ms"] - r["measured_ms"]) / r["measured_ms"])
    assert r["err_pct_calibrated"] == pytest.approx(
        100 * (r["calibrated_ms"] - r["measured_ms"]) / r["measured_ms"])


@pytest.mark.slow
def test_profile_an_arch_of_any_shape(setup, tmp_path):
    """A network the space does not hold (another input size): profile exactly the units it needs."""
    from nse_hw.latency import arch_components
    from nse_hw.space.scale import scale_arch

    arch = scale_arch(load_space(setup / "micro.yaml").arch([(), ()]), resolution=24)
    (tmp_path / "a.json").write_text(arch.dumps())
    res = run("profile", "--device", "host", "--runtime", "onnxruntime", "--arch", tmp_path / "a.json",
              "--out", tmp_path / "t.json", "--cache", setup / "cache", "--cpu-cache", "warm", *FAST)
    assert res.exit_code == 0, res.output
    table = load_table(tmp_path / "t.json")
    assert set(table.entries) == {k for c in arch_components(arch) for k, _ in c.keys}
    assert table.meta["archs"] == [str((tmp_path / "a.json").resolve())] and not table.meta.get("spaces")
    assert predict(arch, table).total_ms >= 0
    res = run("profile", "--device", "pixel", "--arch", tmp_path / "a.json")
    assert res.exit_code == 2 and "--arch is for --device host" in res.output
    res = run("profile", "--runtime", "onnxruntime")
    assert res.exit_code == 2 and "give --space SPACE" in res.output


@pytest.mark.parametrize("args, message", [
    (["--runtime", "onnxruntime", "--space", "nope"], "unknown space 'nope'"),
    (["--runtime", "tensorrt", "--space", "tiny"], "unknown runtime 'tensorrt'"),
    (["--space", "tiny"], "needs --runtime"),
    (["--runtime", "litert", "--space", "tiny", "--threads", "0"], "must be >= 1"),
    (["--device", "nokia", "--space", "tiny"], "unknown device 'nokia'"),
    (["--runtime", "litert", "--space", "tiny", "--convert-cpus", "a-b"], "core numbers"),
    (["--runtime", "litert", "--space", "tiny", "--cpu-cache", "hot"], "'hot' is not one of"),
])
def test_profile_bad_input_exits_2(args, message):
    res = run("profile", *args)
    assert res.exit_code == 2 and message in res.output


def test_profile_bad_space_file_and_unwritable_out_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MICRO_SPACE_YAML.replace("mb_k3_e3]", "mb_k3_x3]"))
    res = run("profile", "--runtime", "litert", "--space", bad, "--out", tmp_path / "t.json")
    assert res.exit_code == 2 and "mb_k3_x3" in res.output
    (tmp_path / "file").write_text("")
    (tmp_path / "ok.yaml").write_text(MICRO_SPACE_YAML)
    res = run("profile", "--runtime", "litert", "--space", tmp_path / "ok.yaml", "--out", tmp_path / "file" / "t.json")
    assert res.exit_code == 2 and "cannot create output directory" in res.output


def test_validate_and_calibrate_bad_input_exit_2(tmp_path):
    res = run("latency", "validate", "--table", tmp_path / "none.json", "--samples", 2)
    assert res.exit_code == 2 and "no latency table" in res.output
    t = tmp_path / "t.json"
    t.write_text(json.dumps({"format": "nse-hw/latency-table/1", "meta": {"device": "pixel1", "runtime": "tflite"},
                             "entries": {}}))
    res = run("latency", "validate", "--table", t, "--samples", 2)
    assert res.exit_code == 2 and "host only" in res.output
    res = run("latency", "calibrate", "--table", t, "--samples", 2)
    assert res.exit_code == 2 and "2 is not in the range x>=3" in res.output


def test_default_runs_keep_an_existing_tables_own(tmp_path, tiny_space):
    """Without --runs: 200, --quick's 100, or (extending a table, e.g. a quick one with an --arch's units) the
    table's own count, so the extension is not refused as 'measured differently'."""
    from nse_hw.profilers.quick import QUICK_RUNS

    from nse_hw.cli.profile import default_runs
    from tests.fixtures.fake_table import fake_table

    assert default_runs(tmp_path / "new.json", quick=False) == 200
    assert default_runs(tmp_path / "new.json", quick=True) == QUICK_RUNS == 100
    table = fake_table(tiny_space)
    table.meta["runs"] = 37
    table.save(tmp_path / "t.json")
    assert default_runs(tmp_path / "t.json", quick=False) == 37
    (tmp_path / "bad.json").write_text("{not json")
    assert default_runs(tmp_path / "bad.json", quick=False) == 200  # refused later, by the table reader


def test_validate_says_first_how_fast_the_machine_ran_against_the_tables_probe(capsys):
    from nse_hw.cli.validate import _echo_report

    s = {"n": 1, "within_10pct": 1.0, "mape": 2.0, "max_abs_pct_err": 2.0, "bias_pct": 2.0, "bias_ms": 0.1}
    row = {"label": "n0", "arch": "x", "measured_ms": 5.0, "lut_sum_ms": 5.1, "err_pct_raw": 2.0,
           "calibrated_ms": None}
    _echo_report({"speed": {"probe_ratio": 1.13}, "archs": [row],
                  "summary": {"raw": s, "calibrated": None, "as_timed": s | {"mape": 9.0}}})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("speed probe: this machine took 1.13x the probe's time at the table's build")
    assert out[-1].startswith("as_timed   n=1 within ±10%: 100%  MAPE 9.00%")
