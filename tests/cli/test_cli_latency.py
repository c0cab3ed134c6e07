import json
import logging

import pytest
from click.testing import CliRunner

from nse_hw.cli import cli
from nse_hw.latency import LatencyTable, space_keys


def test_predict_json_and_errors(tiny_space, tmp_path):
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1})
    for k in space_keys(tiny_space):
        table.set(k, ms=0.5, source="measured")
    table.save(tmp_path / "t.json")
    arch = tiny_space.arch([(tiny_space.pool[0],)] * 4)
    (tmp_path / "a.json").write_text(arch.dumps())
    runner = CliRunner()
    res = runner.invoke(cli, ["latency", "predict", str(tmp_path / "a.json"), "--table", str(tmp_path / "t.json"),
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # units: stem, fixed(+add+scale), s2 op, op+add+scale, s2 op, op+add+scale, head, classifier
    assert out["total_ms"] == 0.5 * 14 and len(out["layers"]) == 8
    (tmp_path / "bad.json").write_text("nope")
    res = runner.invoke(cli, ["latency", "predict", str(tmp_path / "bad.json"), "--table", str(tmp_path / "t.json")])
    assert res.exit_code == 2
    assert "not JSON" in res.output and "Traceback" not in res.output


def test_predict_device_fills_misses_with_the_transfer_model():
    from nse_hw.paths import CONFIGS

    mbv2 = str(CONFIGS / "archs" / "mobilenetv2-1.0-224.json")
    runner = CliRunner()
    res = runner.invoke(cli, ["latency", "predict", mbv2, "--device", "pixel1", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # MobileNetV2's 32/64/160-wide stages are not in nse27-proxyless224's table: predicted, and said so
    assert out["predicted_keys"] and all("|" in k for k in out["predicted_keys"])
    assert out["total_ms"] == pytest.approx(sum(r["ms"] for r in out["layers"]))  # pixel1: no calibration
    res = runner.invoke(cli, ["latency", "predict", mbv2, "--device", "pixel1", "--no-fill"])
    assert res.exit_code == 2 and "has no entry for" in res.output and out["predicted_keys"][0] in res.output
    res = runner.invoke(cli, ["latency", "predict", mbv2, "--device", "pixel1", "--table", "host-litert"])
    assert res.exit_code == 2 and "exactly one" in res.output


def test_predict_any_resolution_and_width_on_pixel1_with_its_setups(tmp_path):
    from nse_hw.paths import CONFIGS
    from tests.fixtures.cli import assert_refused, invoke

    mbv2 = CONFIGS / "archs" / "mobilenetv2-1.0-224.json"
    res = invoke("latency", "predict", mbv2, "--device", "pixel1", "--input-size", 160, "--width", 0.75,
                 "--setup", "google-readme", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["layers"][0]["keys"] == "conv_k3|in=160x160x3|out=24|s=2"  # 32 * 0.75 = 24
    assert "conv_k3|in=160x160x3|out=24|s=2" in out["predicted_keys"]
    assert out["predicted_models"]["conv_k3|in=160x160x3|out=24|s=2"] == "conv (anchored on mb)"
    assert out["setup"] == "google-readme" and 0 < out["setup_ms"] < out["total_ms"]
    assert not any(k.startswith("scale|") for r in out["layers"] for k in r["keys"].split(" + "))  # join: sum
    assert_refused(invoke("latency", "predict", mbv2, "--device", "pixel1", "--input-size", 16),
                   "smaller than the network's total stride 32")
    assert_refused(invoke("latency", "predict", mbv2, "--device", "pixel1", "--setup", "nope"),
                   "no map to setup 'nope'")
    assert_refused(invoke("latency", "predict", mbv2, "--device", "pixel1", "--input-size", 160, "--no-fill"),
                   "has no entry for conv_k3|in=160x160x3|out=32|s=2")


def test_a_family_without_any_entry_names_the_layer(tmp_path):
    from nse_hw.latency import load_table
    from nse_hw.paths import CONFIGS, TABLES
    from tests.fixtures.cli import assert_refused, invoke

    t = load_table(TABLES / "pixel1-tflite.json")
    t.entries = {k: e for k, e in t.entries.items() if not k.startswith("head|")}
    del t.meta["transfer"]["families"]["head"]  # a table that never had a head: nothing to anchor on
    t.save(tmp_path / "nohead.json", replace=True)
    res = invoke("latency", "predict", CONFIGS / "archs" / "mobilenetv2-1.0-224.json", "--table",
                 tmp_path / "nohead.json")
    assert_refused(res, "head: cannot predict 1 keys (e.g. head|in=7x7x320|out=1280): family 'head' has 0")
    assert "measure or import one head unit" in res.output


def test_note10_prices_residual_networks_with_the_add_inside_its_blocks(tmp_path):
    from nse_hw.paths import CONFIGS
    from tests.fixtures.cli import assert_refused, invoke

    mbv2 = CONFIGS / "archs" / "mobilenetv2-1.0-224.json"
    res = invoke("latency", "predict", mbv2, "--device", "note10", "--input-size", 192, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    keys = [k for r in out["layers"] for k in r["keys"].split(" + ")]
    assert not any(k.startswith(("add|", "scale|")) for k in keys)  # OFA timed each residual block with its add
    assert out["total_ms"] == pytest.approx(sum(r["ms"] for r in out["layers"]))
    # a multi-branch join at a stride-2 layer needs an add that phone never timed alone: its own mb model times
    # the factor the Pixel 1's real adds show (tables transfer --anchor-from), and the entry says so
    arch = json.loads(mbv2.read_text())
    arch["layers"][1]["ops"] = "mb_k3_e6+mb_k5_e6"
    (tmp_path / "two.json").write_text(json.dumps(arch))
    res = invoke("latency", "predict", tmp_path / "two.json", "--device", "note10", "--input-size", 192, "--json")
    assert res.exit_code == 0, res.output
    two = json.loads(res.output)
    assert two["layers"][2]["keys"].endswith("+ add|in=48x48x24")
    assert two["predicted_models"]["add|in=48x48x24"] == "join (anchored on mb)"
    assert any("pixel1-tflite.json" in n for n in two["extrapolated"]["add|in=48x48x24"])
    assert_refused(invoke("latency", "predict", tmp_path / "two.json", "--device", "note10", "--no-fill"),
                   "has no entry for")


@pytest.mark.parametrize("flags,level", [([], "INFO"), (["-v"], "DEBUG"), (["-vv"], "DEBUG")])
def test_verbose_turns_on_the_debug_log(flags, level):
    res = CliRunner().invoke(cli, [*flags, "latency", "predict", "mobilenetv2-1.0-224", "--device", "pixel1"])
    assert res.exit_code == 0, res.output
    assert logging.getLevelName(logging.getLogger("nse_hw").level) == level
