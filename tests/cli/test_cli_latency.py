import json

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
