import numpy as np
import onnx
import pytest
from nse_hw.profilers.host import get_runner
from nse_hw.profilers.table_builder import _net_of
from nse_hw.profilers.timing import Evictor, llc_bytes, time_session
from onnx import TensorProto, helper

from nse_hw.errors import NseError


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 8, 8])])
    path = tmp_path_factory.mktemp("onnx") / "relu.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return get_runner("onnxruntime", threads=1).load(path)


def test_llc_bytes_reads_the_largest_cache(tmp_path):
    for i, size in enumerate(["48K", "1024K", "32768K"]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert llc_bytes(tmp_path) == 32 * 2**20
    assert llc_bytes(tmp_path / "missing") == 32 * 2**20  # the documented fallback


def test_both_modes_time_every_run(session):
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8), dtype=np.float32)
    for mode in ("warm", "evicted"):
        t = time_session(session, warmup=1, runs=7, cpu_cache=mode, evictor=Evictor(nbytes=2**20))
        assert t.shape == (7,) and (t > 0).all()
        np.testing.assert_array_equal(session.run(x), np.maximum(x, 0))  # still usable afterwards
    with pytest.raises(NseError, match="cpu cache mode"):
        time_session(session, warmup=1, runs=2, cpu_cache="lukewarm")


def test_entries_are_net_of_the_invocation_and_never_negative():
    stats = {"ms": 0.05, "p10": 0.04, "p90": 0.07, "n": 200}
    assert _net_of(stats, 0.01) == pytest.approx({"ms": 0.04, "p10": 0.03, "p90": 0.06, "n": 200})
    tiny = _net_of({"ms": 0.009, "p10": 0.008, "p90": 0.012, "n": 200}, 0.01)
    assert tiny["ms"] == 0.0 and tiny["p10"] == 0.0 and tiny["p90"] == pytest.approx(0.002) and tiny["clamped"]
