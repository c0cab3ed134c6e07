from nse_hw.export.card import latency_section, signed_error_pct
from nse_hw.latency import predict
from nse_hw.space import load_space, parse_layer
from tests.fixtures.fake_table import fake_table


def test_latency_section_keeps_the_search_target_apart_from_the_host_measurement(tmp_path):
    space = load_space("tiny")
    layers = [parse_layer("mb_k3_e3")] * 4
    table = fake_table(space, tmp_path / "t.json")
    measured = {"ms": 2.0, "p10": 1.9, "p90": 2.1, "n": 20}
    plain = latency_section(space.arch(layers), table, predict(space.arch(layers), table), measured, "d.tflite")
    assert "search_target" not in plain  # a hand-written arch has no search behind it
    assert plain["signed_error_pct"] == signed_error_pct(plain["predicted_ms"], 2.0)

    searched = space.arch(layers, device="pixel1", budget_ms=80.0, predicted_ms=76.7, seed=0)
    sec = latency_section(searched, table, predict(searched, table), measured, "d.tflite")
    assert sec["search_target"] == {"device": "pixel1", "budget_ms": 80.0, "predicted_ms": 76.7}
    assert sec["predicted_ms"] == plain["predicted_ms"]  # the host prediction is the host table's, not the phone's
