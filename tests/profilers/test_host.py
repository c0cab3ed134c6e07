import numpy as np
import onnx
import onnxruntime
import pytest
from nse_hw.profilers.host import get_runner, host_description, summarize
from onnx import TensorProto, helper

from nse_hw.errors import NseError


@pytest.fixture(scope="module")
def relu_onnx(tmp_path_factory):
    """A hand-built 1x4x8x8 Conv(1x1)+Relu graph: exercises the ORT runner without torch export."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 1, 1], np.eye(4, dtype=np.float32).ravel() * 2)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"]), helper.make_node("Relu", ["c"], ["output"])],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path_factory.mktemp("onnx") / "relu.onnx"
    onnx.save_model(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    import torch
    from torch import nn

    from nse_hw.export.tflite import export_tflite

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU6(), nn.Conv2d(8, 8, 3, 2, 1, groups=8))
    return export_tflite(net, (1, 16, 16, 3), tmp_path_factory.mktemp("tfl") / "tiny.tflite")


def check_timing(session, runs: int = 30) -> None:
    times = session.time(warmup=3, runs=runs)
    assert times.shape == (runs,) and (times > 0).all()
    s = summarize(times)
    assert s["n"] == runs and s["p10"] <= s["ms"] <= s["p90"]


def test_ort_runner_runs_and_times(relu_onnx):
    runner = get_runner("onnxruntime", threads=1)
    assert runner.name == "onnxruntime" and runner.version == onnxruntime.__version__ and runner.threads == 1
    session = runner.load(relu_onnx)
    assert session.input_shape == (1, 4, 8, 8)
    x = np.random.default_rng(0).standard_normal((3, 4, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(session.run(x), np.maximum(2 * x, 0), rtol=1e-6)  # batch 3 on a batch-1 model
    check_timing(session)
    np.testing.assert_allclose(session.run(x[:1]), np.maximum(2 * x[:1], 0), rtol=1e-6)  # timing left it usable
    with pytest.raises(NseError, match="does not fit"):
        session.run(np.zeros((1, 8, 8, 4), np.float32))


@pytest.mark.slow
def test_litert_runner_runs_and_times(tiny_tflite, capfd):
    runner = get_runner("litert", threads=1)
    assert runner.name == "litert" and runner.version.count(".") >= 2
    session = runner.load(tiny_tflite)
    assert "XNNPACK" not in capfd.readouterr().err  # the runtime's stderr chatter goes to the debug log
    assert session.input_shape == (1, 16, 16, 3)
    y = session.run(np.ones((2, 16, 16, 3), np.float32))
    assert y.shape == (2, 8, 8, 8) and np.array_equal(y[0], y[1])
    check_timing(session)


@pytest.mark.slow
def test_litert_builtin_kernels_agree_with_xnnpack(tiny_tflite):
    """The builtin op resolver path runs the same file to the same output (float rounding apart)."""
    x = np.random.default_rng(0).standard_normal((1, 16, 16, 3), dtype=np.float32)
    fast, builtin = (get_runner("litert", threads=1, kernels=k) for k in ("xnnpack", "builtin"))
    assert (fast.kernels, builtin.kernels) == ("xnnpack", "builtin") and "builtin" in repr(builtin)
    np.testing.assert_allclose(builtin.load(tiny_tflite).run(x), fast.load(tiny_tflite).run(x), rtol=1e-4,
                               atol=1e-5)
    check_timing(builtin.load(tiny_tflite))


def test_kernels_are_checked():
    with pytest.raises(NseError, match="must be one of xnnpack, builtin"):
        get_runner("litert", threads=1, kernels="amx")
    with pytest.raises(NseError, match="no such path"):
        get_runner("onnxruntime", threads=1, kernels="builtin")
    assert get_runner("onnxruntime", threads=1).kernels is None


def test_bad_runner_name_and_threads():
    with pytest.raises(NseError, match="litert, onnxruntime"):
        get_runner("tensorrt", threads=1)
    for bad in (0, -1, 1.5):
        with pytest.raises(NseError, match="threads"):
            get_runner("litert", threads=bad)


def test_missing_model_file(tmp_path):
    with pytest.raises(NseError, match="does not exist"):
        get_runner("onnxruntime", threads=1).load(tmp_path / "nope.onnx")


def test_summarize():
    s = summarize(np.arange(1.0, 11.0))
    assert s == {"ms": 5.5, "p10": pytest.approx(1.9), "p90": pytest.approx(9.1), "n": 10}
    with pytest.raises(NseError):
        summarize(np.array([]))


def test_bad_timing_arguments(relu_onnx):
    session = get_runner("onnxruntime", threads=1).load(relu_onnx)
    for warmup, runs in ((0, 0), (-1, 5)):
        with pytest.raises(NseError, match="runs >= 1"):
            session.time(warmup=warmup, runs=runs)


def test_host_description():
    d = host_description()
    assert d["cpu"] and d["logical_cores"] >= 1 and d["python"].count(".") == 2
    assert set(d) >= {"cpu", "logical_cores", "cpus_allowed", "platform", "python", "cpu_fingerprint"}
    assert d["cpu_fingerprint"]["model_name"] == d["cpu"] and isinstance(d["cpu_fingerprint"]["isa"], list)


def test_executorch_threadpool_is_set_once_per_process(monkeypatch):
    from nse_hw.profilers import host

    monkeypatch.setattr(host, "_ET_THREADS", [])
    calls = []
    host._set_et_threads(2, calls.append)
    host._set_et_threads(2, calls.append)  # same count: nothing reset under loaded programs
    assert calls == [2]
    with pytest.raises(NseError, match="one thread count per process; this one uses 2, not 1"):
        host._set_et_threads(1, calls.append)
    assert calls == [2]
