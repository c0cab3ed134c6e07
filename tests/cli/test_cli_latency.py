import json

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
