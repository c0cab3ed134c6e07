import json
from pathlib import Path

import numpy as np
import pytest

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, arch_components, load_table, space_keys
from nse_hw.latency.features import key_features
from nse_hw.latency.importers import import_table
from nse_hw.latency.transfer import TransferModel, fill_missing, fit_transfer, shape_of, transfer_table
from nse_hw.space import load_arch, load_space

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "device-data"
TRUE = {"const": 0.05, "dense_mmacs": 0.02, "dw_k3_mmacs": 0.1, "dw_k5_mmacs": 0.15, "dw_k7p_mmacs": 0.2,
        "mid_mb": 0.5}


def truth(key: str) -> float:
    f = key_features(key)
    return TRUE["const"] + sum(c * f[n] for n, c in TRUE.items() if n != "const")


@pytest.fixture(scope="module")
def nse27_keys():
    return space_keys(load_space("nse27-proxyless224"))


def device_table(keys, fn=truth) -> LatencyTable:
    t = LatencyTable({"device": "phone", "runtime": "tflite"})
    for k in keys:
        t.set(k, ms=fn(k), source="imported")
    return t


def fitted_keys(keys):
    """What a Pixel-1-like table has: k3/5/7 x e3/6 MBConvs at every position."""
    return [k for k in keys if any(k.startswith(f"mb_k{k_}_e{e}|") for k_ in (3, 5, 7) for e in (3, 6))]


def test_recovers_a_known_linear_device(nse27_keys):
    dev = device_table(fitted_keys(nse27_keys))
    targets = [k for k in nse27_keys if k.startswith("mb_")]
    out, model = transfer_table(dev, keys=targets)
    mb = model.families["mb"]
    assert mb.loo_mape < 1e-3 and mb.loo_within_10 == 100
    for k in targets:
        assert out.ms(k) == pytest.approx(truth(k), rel=1e-4)
    k9 = next(k for k in targets if k.startswith("mb_k9_e3|"))
    assert out.entries[k9]["source"] == "predicted"
    assert out.entries[k9]["extrapolated"] == ["k=9 beyond the fitted kernels (max 7)"]
    assert out.meta["transfer"]["predicted"] == len(targets) - len(dev.entries)
    assert dev.entries.keys() != out.entries.keys()  # the input table is not modified


def test_shape_correction_recovers_position_effects(nse27_keys):
    fitted = fitted_keys(nse27_keys)
    shapes = sorted({shape_of(k) for k in fitted})
    factor = {s: 0.9 + 0.1 * (i % 3) for i, s in enumerate(shapes)}  # cache effects the features cannot see

    def dev_ms(k):
        return truth(k) * factor[shape_of(k)]

    plain = fit_transfer(device_table(fitted, dev_ms), shape_correction=False).families["mb"]
    corr = fit_transfer(device_table(fitted, dev_ms)).families["mb"]
    assert corr.loo_mape < plain.loo_mape / 3 and corr.loo_mape_uncorrected == pytest.approx(plain.loo_mape)
    assert set(corr.shape_factors) == set(shapes) and not plain.shape_factors
    # held-out ops at fitted shapes (e1, k9, dilated) land closer to the truth with the correction
    targets = [k for k in nse27_keys if k.startswith("mb_") and k not in fitted and shape_of(k) in factor]
    out_c, _ = transfer_table(device_table(fitted, dev_ms), keys=targets)
    out_p, _ = transfer_table(device_table(fitted, dev_ms), keys=targets, shape_correction=False)
    err = {n: np.mean([abs(o.ms(k) / dev_ms(k) - 1) for k in targets]) for n, o in (("c", out_c), ("p", out_p))}
    assert err["c"] < 0.8 * err["p"], err


def test_host_latency_candidate_wins_when_keys_cannot_explain_the_device(nse27_keys):
    rng = np.random.default_rng(0)
    fitted = fitted_keys(nse27_keys)
    host = LatencyTable({"device": "host", "runtime": "litert"})
    for k in fitted + [k for k in nse27_keys if k.startswith("mb_k9")]:
        host.set(k, ms=float(rng.uniform(0.5, 5.0)), source="measured")
    dev = device_table(fitted, lambda k: 3.0 * host.ms(k))
    out, model = transfer_table(dev, host=host)
    mb = model.families["mb"]
    assert set(mb.candidates) == {"key features", "key features + host ms"}
    assert mb.candidates["key features + host ms"]["loo_mape"] < 1 < mb.candidates["key features"]["loo_mape"]
    assert mb.coef[mb.features.index("host_ms")] == pytest.approx(3.0, rel=1e-3)
    k9 = next(k for k in host.entries if k.startswith("mb_k9"))
    assert out.ms(k9) == pytest.approx(3.0 * host.ms(k9), rel=1e-3)
    with pytest.raises(NseError, match="host table .* lacks 1 of the requested keys"):
        transfer_table(dev, host=host, keys=["mb_k11_e6|in=7x7x192|out=320|s=1"])


def test_too_few_entries_and_unfittable_families(nse27_keys):
    few = device_table(fitted_keys(nse27_keys)[:5])
    with pytest.raises(NseError, match="too few entries to fit any family: .*'mb' needs at least 14 entries .* 5"):
        transfer_table(few, keys=nse27_keys)
    dev = device_table(fitted_keys(nse27_keys))
    with pytest.raises(NseError, match="cannot predict 15 keys .*family 'conv' has 0 measured/imported .* least 6"):
        transfer_table(dev, keys=nse27_keys)


def test_fill_missing_uses_the_stored_model(nse27_keys, tmp_path):
    dev = device_table(fitted_keys(nse27_keys))
    with pytest.raises(NseError, match="has no transfer model"):
        fill_missing(["mb_k9_e6|in=7x7x192|out=320|s=1"], dev)
    out, _ = transfer_table(dev, keys=fitted_keys(nse27_keys)[:3])
    out.save(tmp_path / "t.json")
    t = load_table(tmp_path / "t.json")
    keys = ["mb_k9_e6|in=7x7x192|out=320|s=1", "rec_k5_e2|in=14x14x96|out=96|s=1", fitted_keys(nse27_keys)[0]]
    assert fill_missing(keys, t) == keys[:2]
    assert t.entries[keys[0]]["source"] == "predicted" and t.ms(keys[0]) == pytest.approx(truth(keys[0]), rel=1e-3)
    assert t.entries[keys[1]]["extrapolated"] == ["family rec predicted with the mb model"]
    again = TransferModel.from_dict(json.loads(json.dumps(t.meta["transfer"])))
    assert again.families["mb"].coef == t.meta["transfer"]["families"]["mb"]["coef"]


@pytest.fixture(scope="module")
def pixel1():
    if not (SHARED / "proxylessnas_mobile_trim_pixel1.yaml").is_file():
        pytest.skip(f"public device data not found at {SHARED}")
    return import_table(SHARED / "proxylessnas_mobile_trim_pixel1.yaml", fmt="proxylessnas", device="pixel1")[0]


def test_pixel1_leave_one_out(pixel1):
    """The public Pixel 1 blocks: MACs + middle bytes explain them (DESIGN.md: ~6% plain, 86% within 10%)."""
    mb = fit_transfer(pixel1).families["mb"]
    assert mb.n_fit == 69 and mb.unfitted == ["se_mb", "hs_mb"]
    assert mb.loo_mape_uncorrected < 7 and mb.loo_within_10_uncorrected > 80
    assert mb.loo_mape < mb.loo_mape_uncorrected and mb.loo_within_10 > 85


def test_shipped_pixel1_table_is_complete(nse27_keys):
    t = load_table(REPO / "latency_tables" / "pixel1-tflite.json")
    assert set(nse27_keys) <= set(t.entries)
    assert {e["source"] for e in t.entries.values()} == {"imported", "predicted"}
    for key in ("conv_k3|in=224x224x3|out=32|s=2", "head|in=7x7x320|out=1280", "classifier|in=7x7x1280|out=1000",
                "add|in=56x56x32", "mb_k5_e6|in=28x28x40|out=80|s=2"):
        assert t.entries[key]["source"] == "imported"
    # the real profile timed the released network (32 wide at 56x56): its adds are keyed to that width
    assert t.entries["add|in=56x56x24"]["source"] == "predicted"
    assert t.entries["mb_k3_e3|in=56x56x24|out=24|s=1"].get("includes_residual_add") is True
    assert all(t.entries[k]["source"] == "predicted" for k in nse27_keys if k.startswith(("scale|", "rec_")))
    assert t.meta["transfer"]["families"]["mb"]["loo_mape"] < 6
    # misses beyond the space (MobileNetV2's widths) are predicted from the stored model
    keys = [k for c in arch_components(load_arch(REPO / "configs/archs/mobilenetv2-1.0-224.json")) for k, _ in c.keys]
    filled = fill_missing(keys, t)
    assert filled and all(t.entries[k]["source"] == "predicted" for k in filled) and set(keys) <= set(t.entries)


STEM = "conv_k3|in=224x224x3|out=32|s=2"


def test_a_family_with_one_entry_is_anchored_on_the_mb_model(nse27_keys):
    dev = device_table(fitted_keys(nse27_keys))
    dev.set(STEM, ms=0.5, source="imported")
    # model(stem at 224) = 0.05 + 0.02 * 112*112*3*32*9 / 1e6 = 0.266760; at 160: 0.05 + 0.02 * 5.5296 = 0.160592
    key = "conv_k3|in=160x160x3|out=32|s=2"
    out, model = transfer_table(dev, keys=[key])
    conv = model.families["conv"]
    assert conv.anchored["anchors"] == [STEM] and conv.loo_mape is None
    assert conv.anchored["factor"] == pytest.approx(0.5 / 0.26676, rel=1e-4)
    assert out.ms(key) == pytest.approx(0.5 * 0.160592 / 0.26676, rel=1e-4)
    e = out.entries[key]
    assert e["source"] == "predicted" and e["model"] == "conv (anchored on mb)"
    assert any(n.startswith("shape not measured: the mb model x1.87") for n in e["extrapolated"])


def test_no_entry_of_a_family_is_an_error_naming_what_to_measure(nse27_keys):
    dev = device_table(fitted_keys(nse27_keys))
    with pytest.raises(NseError, match=r"family 'head' has 0 measured/imported entries .* measure or import one "
                                        r"head unit, e\.g\. head\|in=5x5x320\|out=1280"):
        transfer_table(dev, keys=["head|in=5x5x320|out=1280"])


def test_a_family_with_no_entry_takes_the_factor_a_donor_table_shows(nse27_keys):
    """Note10 never timed an add alone: its joins are its own mb model times the factor another table shows
    between its adds and its own mb model. The truth has no byte term, so an add's mb model is the const."""
    donor = device_table(fitted_keys(nse27_keys))
    donor.set("add|in=56x56x24", ms=3 * TRUE["const"], source="imported")  # the donor's add: 3x its mb model
    donor.path = Path("donor.json")
    dev = device_table(fitted_keys(nse27_keys), fn=lambda k: 2 * truth(k))  # a phone twice as slow
    key = "add|in=28x28x40"
    out, model = transfer_table(dev, keys=[key, "scale|in=28x28x40"], donors=(donor,))
    join = model.families["join"]
    assert join.anchored["factor"] == pytest.approx(3.0, rel=1e-4) and join.anchored["from"] == "donor.json"
    assert out.ms(key) == pytest.approx(2 * TRUE["const"] * 3, rel=1e-4)  # this device's mb model x 3
    assert "the factor donor.json shows" in out.entries[key]["extrapolated"][-1]
    assert join.n_fit == 0 and join.loo_mape is None
    with pytest.raises(NseError, match="family 'join' has 0 measured/imported entries"):
        transfer_table(dev, keys=[key], donors=(device_table(fitted_keys(nse27_keys)),))  # a donor without joins


def test_fill_missing_anchors_on_an_older_stored_model(nse27_keys):
    """A table whose stored model predates anchoring still prices any stem from its one measured stem."""
    dev = device_table(fitted_keys(nse27_keys))
    out, _ = transfer_table(dev, keys=fitted_keys(nse27_keys)[:1])
    out.set(STEM, ms=0.5, source="imported")
    assert "conv" not in out.meta["transfer"]["families"]
    key = "conv_k3|in=96x96x3|out=16|s=2"  # 48*48*3*16*9 = 0.995328 MMAC -> model 0.0699066
    assert fill_missing([key], out) == [key]
    assert out.ms(key) == pytest.approx(0.5 * 0.0699066 / 0.26676, rel=1e-4)


def test_an_unmeasured_shape_takes_its_siblings_residual(nse27_keys):
    """The device is the linear truth times a per-op factor the features cannot see (as a runtime's kernels
    are). At 160 px no shape is fitted, so each op takes the residual of its 224-px sibling: the model times
    that factor, nearer the device than the model alone (here 8% off instead of 12%: the fit has absorbed part
    of the factors into its coefficients, differently at each size)."""
    fitted = fitted_keys(nse27_keys)
    op_factor = {"mb_k3_e3": 1.3, "mb_k5_e6": 0.7}

    def dev_ms(k):
        return truth(k) * op_factor.get(k.split("|")[0], 1.0)

    dev = device_table(fitted, dev_ms)
    mb = fit_transfer(dev).families["mb"]
    assert set(mb.siblings) == set(fitted)
    key = "mb_k3_e3|in=80x80x16|out=24|s=2"  # the 160-px twin of mb_k3_e3|in=112x112x16|out=24|s=2
    out, _ = transfer_table(dev, keys=[key])
    sib = "mb_k3_e3|in=112x112x16|out=24|s=2"
    assert out.entries[key]["sibling"] == {"key": sib, "factor": mb.siblings[sib]}
    plain = mb.predict({"const": 1.0, **key_features(key)})
    assert out.ms(key) == pytest.approx(plain * mb.siblings[sib], rel=1e-9)
    assert abs(out.ms(key) / dev_ms(key) - 1) < abs(plain / dev_ms(key) - 1)
    # no sibling (channels the table never had): the linear model alone, marked as such
    lone = "mb_k3_e3|in=80x80x16|out=32|s=2"
    out, _ = transfer_table(dev, keys=[lone])
    assert "sibling" not in out.entries[lone] and "shape_factor" not in out.entries[lone]
    assert out.ms(lone) == pytest.approx(mb.predict({"const": 1.0, **key_features(lone)}), rel=1e-6)
    # shape_correction=False turns both corrections off
    assert not fit_transfer(dev, shape_correction=False).families["mb"].siblings


def test_fill_missing_finds_siblings_for_an_older_stored_model(nse27_keys):
    fitted = fitted_keys(nse27_keys)
    dev = device_table(fitted, lambda k: truth(k) * (1.3 if k.startswith("mb_k3_e3|") else 1.0))
    out, _ = transfer_table(dev, keys=fitted[:1])
    for fam in out.meta["transfer"]["families"].values():  # as written before sibling correction
        fam.pop("siblings")
    key = "mb_k3_e3|in=80x80x16|out=24|s=2"
    assert fill_missing([key], out) == [key]
    sib = out.entries[key]["sibling"]
    assert sib["key"] == "mb_k3_e3|in=112x112x16|out=24|s=2"
    assert sib["factor"] == fit_transfer(dev).families["mb"].siblings[sib["key"]]  # as a fresh fit has it


def test_units_timed_at_the_floor_are_left_out_of_the_fit(nse27_keys):
    """A measured 0 ms (a tiny unit at or below the invoke overhead) has no relative error to fit: the other
    entries still recover the device, and the 0 ms entry stays as measured."""
    fitted = fitted_keys(nse27_keys)
    floor = set(fitted[:5])
    dev = device_table(fitted, fn=lambda k: 0.0 if k in floor else truth(k))
    targets = [k for k in nse27_keys if k.startswith("mb_")]
    out, model = transfer_table(dev, keys=targets)
    assert model.families["mb"].n_fit == len(fitted) - 5 and model.families["mb"].loo_mape < 1e-3
    assert all(out.ms(k) == 0.0 for k in floor)
    k9 = next(k for k in targets if k.startswith("mb_k9_e3|"))
    assert out.ms(k9) == pytest.approx(truth(k9), rel=1e-4)
    with pytest.raises(NseError, match="too few entries to fit any family: family 'mb' has no entry above 0 ms"):
        transfer_table(device_table(fitted, fn=lambda k: 0.0), keys=targets)
