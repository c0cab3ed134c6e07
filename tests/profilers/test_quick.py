"""profile --quick: the measured subset (worked out from the space's layout) and the refusal paths."""

from collections import Counter

import pytest
from nse_hw.profilers.quick import predict_rest, quick_keys, reference_table

from nse_hw.errors import NseError
from nse_hw.hostcpu import this_cpu
from nse_hw.latency import LatencyTable, space_keys
from nse_hw.latency.family import shape_of
from nse_hw.latency.features import key_family


def test_quick_keys_of_nse27(nse27):
    keys = space_keys(nse27)
    sub = quick_keys(keys)
    assert len(keys) == 313 and len(sub) == 65 and sub == [k for k in keys if k in set(sub)]  # space order
    fams = Counter(key_family(k) for k in sub)
    # 11 positions x (k3, k5, two k>=7) + the fixed first block; 11 rec; 6 joins; stem, head, classifier
    assert fams == {"mb": 45, "rec": 11, "join": 6, "conv": 1, "head": 1, "classifier": 1}
    blocks = [k for k in sub if key_family(k) in ("mb", "rec")]
    per_shape = Counter(shape_of(k) for k in blocks)
    assert sorted(per_shape.values()) == [1] + [5] * 11
    ops = Counter(k.split("|")[0] for k in blocks)
    assert set(ops) == {k.split("|")[0] for k in keys if key_family(k) in ("mb", "rec")}  # every op measured
    assert max(ops.values()) <= 4
    joins = sorted(k for k in sub if key_family(k) == "join")
    assert [k.split("|")[0] for k in joins].count("add") == 3 and len({shape_of(k) for k in joins}) == 6
    assert quick_keys(keys) == sub  # deterministic


def test_quick_keys_tiny(tiny_space):
    keys = space_keys(tiny_space)
    sub = quick_keys(keys)
    assert sub and set(sub) <= set(keys)
    assert {key_family(k) for k in keys} - {"mb", "rec", "join"} <= {key_family(k) for k in sub}


def test_reference_table_needs_a_full_table(tmp_path):
    with pytest.raises(NseError, match="run the full profile"):
        reference_table("litert", "float32", 1, "xnnpack", root=tmp_path)


def test_shipped_reference():
    ref = reference_table("litert", "int8", 1, "xnnpack")
    assert ref.path.name == "host-litert-int8.json"
    assert reference_table("litert", "float32", 1, "xnnpack").path.name == "host-litert.json"
    assert reference_table("litert", "float32", 2, "xnnpack").path.name == "host-litert-t2.json"


def _fake_ref(space):
    from tests.fixtures.fake_table import fake_table

    return fake_table(space)


def test_predict_rest_scales_a_uniformly_faster_cpu(nse27):
    """A CPU 1.1x the reference everywhere (and 0.02 ms more per unit): every predicted key lands within 1%."""
    ref = _fake_ref(nse27)
    keys = space_keys(nse27)
    mine = LatencyTable({"device": "host", "runtime": "litert", "threads": 1, "precision": "float32"})
    for k in quick_keys(keys):
        mine.set(k, ms=1.1 * ref.ms(k) + 0.02, source="measured")
    out = predict_rest(mine, ref, keys)
    assert set(out.entries) == set(keys)
    q = out.meta["quick"]
    assert (q["measured"], q["predicted"]) == (65, 248)
    for k in keys:
        e = out.entries[k]
        want = 1.1 * ref.ms(k) + 0.02
        assert e["source"] == ("measured" if k in mine else "predicted")
        assert abs(e["ms"] / want - 1) < 0.01, (k, e["ms"], want)
    # a second pass (a resumed run) redoes the predictions from the measured entries only
    again = predict_rest(out, ref, keys)
    assert again.meta["quick"]["measured"] == 65 and again.entries == out.entries


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """One export cache for the module's quick profiles: the same blocks at the same seeds, converted once (each
    profile still times every unit itself; converting them is ~70 s of a test on one core)."""
    return tmp_path_factory.mktemp("quick-exports")


def _quick_args(tiny_space, tmp_path, exports):
    ref = _fake_ref(tiny_space)
    ref.meta.update(warmup=0, runs=3)
    ref.save(tmp_path / "ref.json")
    return ["profile", "--device", "host", "--runtime", "litert", "--space", "tiny", "--quick", "--warmup", 0,
            "--runs", 3, "--cpu-cache", "warm", "--reference", tmp_path / "ref.json", "--out", tmp_path / "q.json",
            "--cache", exports, "--convert-cpus", "none"]


@pytest.mark.slow
def test_profile_quick_end_to_end(tiny_space, tmp_path, exports, monkeypatch):
    """The CLI path on the tiny space: a measured subset, the rest predicted from a reference, calibrated on
    measured networks; re-running measures nothing more and keeps a valid table. (The tiny networks run in
    microseconds, so their check can be >5% off on any machine: no re-timing here, the next test covers it.)"""
    from nse_hw.latency import load_table
    from tests.fixtures.cli import invoke

    monkeypatch.setattr("nse_hw.profilers.quick.QUICK_RETIMES", 0)
    args = _quick_args(tiny_space, tmp_path, exports)
    out = tmp_path / "q.json"
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    t = load_table(out)
    keys = space_keys(tiny_space)
    q = t.meta["quick"]
    assert set(keys) <= set(t.entries) and (q["measured"], q["predicted"]) == (29, 5)
    assert {t.entries[k]["source"] for k in quick_keys(keys)} == {"measured"}
    cal = t.meta["calibration"]
    assert cal["n"] == 4 and t.meta["kernels"] == "xnnpack"
    # 4 networks check the table, nothing is fitted on them (quick_calibration_rules.py): total = LUT sum
    assert (cal["form"], cal["slope"], cal["intercept_ms"]) == ("identity", 1.0, 0.0) and cal["raw_mape"] >= 0
    assert t.meta["host"]["cpu_fingerprint"]["isa"] == this_cpu()["isa"]
    assert "quick table: measured 29 entries this run, predicted 5" in res.output
    res = invoke(*args)
    assert res.exit_code == 0 and "measured 0 entries this run" in res.output, res.output


@pytest.mark.slow
def test_a_check_far_off_times_the_units_again_and_keeps_the_closer_pass(tiny_space, tmp_path, exports,
                                                                         monkeypatch):
    """Every check 'fails' (threshold below 0): the subset is timed twice, the pass whose check networks agree
    better is the table on disk, and the warning says it stayed off."""
    from nse_hw.latency import load_table
    from tests.fixtures.cli import invoke

    monkeypatch.setattr("nse_hw.profilers.quick.CHECK_MAPE", -1.0)
    res = invoke(*_quick_args(tiny_space, tmp_path, exports))
    assert res.exit_code == 0, res.output
    t = load_table(tmp_path / "q.json")
    q, cal = t.meta["quick"], t.meta["calibration"]
    assert q["measured_this_run"] == 2 * 29 and q["measured"] == 29 and len(q["check_mape_per_pass"]) == 2
    assert round(cal["raw_mape"], 2) == min(q["check_mape_per_pass"])
    assert {t.entries[k]["source"] for k in quick_keys(space_keys(tiny_space))} == {"measured"}
    assert "timing them again (1 of 1)" in res.output and "after 2 timing passes" in res.output
    assert "quick table: measured 58 entries this run" in res.output
