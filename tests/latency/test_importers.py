import math
from pathlib import Path

import pytest
import yaml

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, space_keys
from nse_hw.latency.importers import import_table
from nse_hw.space import load_arch, load_space

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "device-data"
PIXEL1 = SHARED / "proxylessnas_mobile_trim_pixel1.yaml"
NOTE10 = SHARED / "ofa_note10_224_lookup_table.yaml"
PROFILE = SHARED / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"
ARCHS = Path(__file__).resolve().parents[2] / "configs" / "archs"


@pytest.fixture(scope="module")
def shared():
    if not PIXEL1.is_file():
        pytest.skip(f"public device data not found at {SHARED} (the shared folder beside the repo)")
    return SHARED


def profile_nodes():
    from nse_hw.profilers.benchmark_model import parse_benchmark_output

    r = parse_benchmark_output(PROFILE.read_text())
    return r.count, [(n.type, n.avg_ms) for n in r.nodes]


def test_pixel1_maps_every_key_onto_the_space(shared):
    raw = yaml.safe_load(PIXEL1.read_text())
    t, rep = import_table(PIXEL1, fmt="proxylessnas", device="pixel1")
    assert len(rep.imported) == len(raw) == 72 and not rep.skipped
    # the shapes are our ProxylessNAS skeleton's; our first layer is fixed to k3, the Pixel 1 table also has k5/k7
    extra = set(t.entries) - set(space_keys(load_space("nse27-proxyless224")))
    assert extra == {"mb_k5_e1|in=112x112x32|out=16|s=1", "mb_k7_e1|in=112x112x32|out=16|s=1"}
    stem = t.entries["conv_k3|in=224x224x3|out=32|s=2"]
    assert stem["ms"] == raw["Conv-input:224x224x3-output:112x112x32"]["mean"]
    assert stem["std"] == pytest.approx(math.sqrt(raw["Conv-input:224x224x3-output:112x112x32"]["var"]))
    assert t.ms("head|in=7x7x320|out=1280") == raw["Conv_1-input:7x7x320-output:7x7x1280"]["mean"]
    assert t.ms("classifier|in=7x7x1280|out=1000") == raw["Logits-input:7x7x1280-output:1000"]["mean"]
    src = "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:3-stride:2-idskip:0"
    assert t.entries["mb_k3_e3|in=112x112x16|out=24|s=2"]["raw_key"] == src
    assert all(e["source"] == "imported" for e in t.entries.values())
    # no add entries in the table yet: residual blocks keep their add, flagged
    residual = [k for k, e in t.entries.items() if e.get("includes_residual_add")]
    assert len(residual) == len(rep.notes) == sum(k.endswith("-idskip:1") for k in raw) == 30
    assert t.meta["imports"][0]["sha256"] and t.meta["device"] == "pixel1"


def test_residual_add_is_subtracted_when_the_table_has_it(shared):
    base = LatencyTable({"device": "pixel1", "runtime": "tflite", "imports": []})
    base.set("add|in=56x56x24", ms=0.076, source="imported")
    t, rep = import_table(PIXEL1, fmt="proxylessnas", device="pixel1", table=base)
    e = t.entries["mb_k5_e6|in=56x56x24|out=24|s=1"]
    assert e["ms"] == pytest.approx(e["raw_ms"] - 0.076) and e["minus_add_ms"] == 0.076
    assert "includes_residual_add" not in e
    assert len(rep.notes) == 24  # the four other residual shapes have no add entry


def test_profile_adds_then_blocks(shared):
    arch = load_arch(ARCHS / "proxylessnas-mobile-224.json")
    t, rep = import_table(PROFILE, fmt="benchmark-profile", device="pixel1", arch=arch, profile=profile_nodes())
    assert rep.imported == ["add|in=56x56x24", "add|in=28x28x40", "add|in=14x14x80", "add|in=14x14x96",
                            "add|in=7x7x192"]
    assert [t.entries[k]["n"] for k in rep.imported] == [1, 3, 3, 3, 3]
    assert t.ms("add|in=56x56x24") == 0.076 and t.ms("add|in=7x7x192") == pytest.approx((0.009 + 0.009 + 0.011) / 3)
    t, rep = import_table(PIXEL1, fmt="proxylessnas", device="pixel1", table=t)
    assert not rep.notes and not any(e.get("includes_residual_add") for e in t.entries.values())
    assert len(t.meta["imports"]) == 2 and not t.adds_in_ops


def test_profile_of_another_arch_is_refused(shared):
    mv2 = load_arch(ARCHS / "mobilenetv2-1.0-224.json")
    with pytest.raises(NseError, match="13 ADD nodes but the arch has 10 add units"):
        import_table(PROFILE, fmt="benchmark-profile", device="pixel1", arch=mv2, profile=profile_nodes())
    with pytest.raises(NseError, match="needs the arch"):
        import_table(PROFILE, fmt="benchmark-profile", device="pixel1", profile=profile_nodes())


def test_ofa_note10_partial(shared):
    with pytest.raises(NseError, match="2 keys of ofa_note10_224_lookup_table.yaml have no counterpart.*partial"):
        import_table(NOTE10, fmt="ofa", device="note10")
    t, rep = import_table(NOTE10, fmt="ofa", device="note10", allow_partial=True)
    assert len(rep.imported) == 94 and len(rep.skipped) == 2
    assert set(rep.skipped) == {"AvgPool2D-input:7x7x1152-output:1x1x1152", "Conv_2-input:1x1x1152-output:1x1x1536"}
    # h-swish stem and final 1x1: our keys, flagged; Logits on the pooled 1x1 map is our classifier there
    assert "h-swish" in t.entries["conv_k3|in=224x224x3|out=24|s=2"]["approx"]
    assert "h-swish" in t.entries["head|in=7x7x192|out=1152"]["approx"]
    assert "approx" not in t.entries["classifier|in=1x1x1536|out=1000"]
    raw = "expanded_conv-input:14x14x136-output:14x14x136-expand:408-kernel:5-stride:1-idskip:1-se:1-hs:1"
    e = t.entries["mb_k5_e3_se_hs|in=14x14x136|out=136|s=1"]
    assert e["raw_key"] == raw and e["includes_residual_add"]
    assert "mb_k3_e6|in=112x112x24|out=32|s=2" in t.entries  # expand 144 = 6 x 24
    assert t.meta["imports"][0]["skipped"] == rep.skipped
    # no add was ever timed on that phone: the table keeps every residual add in its ops, and says so
    assert t.meta["residual_add"] == "in-op" and t.adds_in_ops
    t.set("add|in=14x14x136", ms=0.01, source="imported")
    t, _ = import_table(NOTE10, fmt="ofa", device="note10", table=t, allow_partial=True)
    assert t.entries["mb_k5_e3_se_hs|in=14x14x136|out=136|s=1"]["ms"] == e["ms"]  # not subtracted: one convention


def test_bad_inputs(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({
        "expanded_conv-input:14x14x96-output:14x14x96-expand:200-kernel:3-stride:1-idskip:1-se:0-hs:0":
            {"mean": 1.0, "std": 0.1, "count": 3}}))
    with pytest.raises(NseError, match="middle width 200 is not a multiple of the input width 96"):
        import_table(p, fmt="ofa", device="x")
    with pytest.raises(NseError, match="unknown import format 'tflite'; known: proxylessnas, ofa"):
        import_table(p, fmt="tflite", device="x")
    p.write_text("a: [1, 2")
    with pytest.raises(NseError, match="not valid YAML"):
        import_table(p, fmt="proxylessnas", device="x")
    p.write_text(yaml.safe_dump({"Conv-input:224x224x3-output:112x112x32": {"count": 3}}))
    with pytest.raises(NseError, match="has no numeric 'mean'"):
        import_table(p, fmt="proxylessnas", device="x")
    with pytest.raises(NseError, match="cannot merge 'x' entries into table .* of device 'pixel1'"):
        import_table(p, fmt="proxylessnas", device="x", table=LatencyTable({"device": "pixel1"}))
