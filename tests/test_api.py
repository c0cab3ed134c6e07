"""The Python API (nse_hw.api, re-exported at the top level): its docstring examples, the examples/ scripts,
and each call against the library and CLI it stands for."""

import doctest
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/fixtures (FAKE tables, tests only)
from fixtures.cli import invoke  # noqa: E402
from fixtures.fake_table import fake_table  # noqa: E402
from fixtures.search import tiny_budget_ms, tiny_setup  # noqa: E402
from fixtures.train import ONE_EPOCH  # noqa: E402

import nse_hw  # noqa: E402
from nse_hw import api, api_jobs  # noqa: E402
from nse_hw.errors import LatencyMiss, NseError  # noqa: E402
from nse_hw.latency import LatencyTable, predict, space_keys  # noqa: E402
from nse_hw.paths import CONFIGS  # noqa: E402
from nse_hw.space import load_space, parse_layer, parse_op  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MBV2 = CONFIGS / "archs" / "mobilenetv2-1.0-224.json"
PROXYLESS = "proxylessnas-mobile-224"


def _python(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                          **kw)


# --- the surface ----------------------------------------------------------------------------------------------

def test_docstring_examples_run():
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL
    attempted = 0
    for mod in (api, api_jobs):
        res = doctest.testmod(mod, optionflags=flags, verbose=False)
        assert res.failed == 0, f"{mod.__name__}: {res.failed} docstring example(s) failed (run pytest -s to see)"
        attempted += res.attempted
    assert attempted >= 30  # the examples are there (a SKIPped one does not count)


def test_every_public_name_is_documented_typed_and_keyword_only():
    assert set(api.__all__) <= set(nse_hw.__all__)
    for name in api.__all__:
        obj = getattr(nse_hw, name)
        assert obj is getattr(api, name) and obj.__doc__, name
        if inspect.isfunction(obj):
            assert "Examples:" in obj.__doc__ and "Args:" in obj.__doc__ and "Returns:" in obj.__doc__, name
            params = list(inspect.signature(obj).parameters.values())
            assert all(p.annotation is not inspect.Parameter.empty for p in params), name
            assert inspect.signature(obj).return_annotation is not inspect.Signature.empty, name
            # one subject positionally, every setting by keyword
            assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:]), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nse_hw.nope  # noqa: B018
    assert {"predict_latency", "search", "LatencyReport"} <= set(dir(nse_hw))


def test_import_nse_hw_stays_light():
    code = ("import sys, nse_hw, nse_hw.api; nse_hw.predict_latency; "
            "print(sorted(m for m in ('torch', 'numpy', 'nse_hw.latency', 'nse_hw.cli') if m in sys.modules))")
    res = _python("-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("script,args,needle", [
    ("predict.py", [], "total"),
    ("predict.py", [PROXYLESS, "--json"], '"total_ms"'),
    ("own_supernet_penalty.py", ["--steps", "100"], "expected latency"),
])
def test_examples_run(script, args, needle):
    res = _python(str(ROOT / "examples" / script), *args)
    assert res.returncode == 0, res.stderr
    assert needle in res.stdout
    if script == "own_supernet_penalty.py":  # the penalty pulled E[latency] from ~216 ms to the 70 ms target
        start, end = map(float, re.search(r"expected latency: ([0-9.]+) ms -> ([0-9.]+) ms", res.stdout).groups())
        assert start > 150 and abs(end - 70) < 5, res.stdout


def test_example_refuses_bad_input_in_one_line():
    res = _python(str(ROOT / "examples" / "predict.py"), "model.onnx")
    # .onnx files are read too: a missing one is named
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no such model file: model.onnx" in res.stderr


# --- load_arch / load_table -------------------------------------------------------------------------------------

def test_every_arch_form_reads_the_same(tmp_path):
    arch = nse_hw.load_arch(MBV2)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "arch.json").write_text(arch.dumps())
    for form in (arch, str(MBV2), MBV2, "mobilenetv2-1.0-224", tmp_path / "run", nse_hw.build_model(arch)):
        assert nse_hw.load_arch(form) == arch


@pytest.mark.parametrize("bad,needle", [
    ("net.onnx", "no such model file: net.onnx"), ("net.tflite", "no such model file: net.tflite"),
    ("no-such-net", "model name 'no-such-net' needs its input size"),
    ("missing/arch.json", "missing/arch.json"), (torch.nn.Linear(2, 2), "cannot read an architecture from a Linear"),
    (42, "from a int"),
])
def test_unreadable_models_are_one_line_errors(bad, needle, tmp_path):
    with pytest.raises(NseError) as exc:
        nse_hw.predict_latency(bad)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg
    if not isinstance(bad, str):  # not a file or model name: the message says what is accepted
        assert api.ACCEPTED in msg


def test_predict_latency_imports_model_files_and_names(tmp_path):
    from nse_hw.export.models import import_model

    want = nse_hw.predict_latency("mobilenetv2-1.0-224", device="pixel1")
    got = nse_hw.predict_latency("mobilenet_v2", device="pixel1", input_size=224)  # torchvision, via ONNX
    assert got.total_ms == pytest.approx(want.total_ms, rel=1e-9)
    assert import_model("mobilenet_v2", input_size=224).arch.layers == nse_hw.load_arch("mobilenetv2-1.0-224").layers


def test_bad_arch_file_and_run_dir_without_arch(tmp_path):
    (tmp_path / "bad.json").write_text('{"format": "nse-hw/arch/1"}')
    with pytest.raises(NseError, match="bad.json"):
        nse_hw.load_arch(tmp_path / "bad.json")
    with pytest.raises(NseError, match="directory without arch.json"):
        nse_hw.load_arch(tmp_path)


def test_load_table_by_device_name_and_path():
    assert nse_hw.load_table("pixel1").path.name == "pixel1-tflite.json"
    assert nse_hw.load_table("host").path.name == "host-litert.json"  # the TFLite-family table of the device
    assert nse_hw.load_table("host", precision="int8").path.name == "host-litert-int8.json"
    t = nse_hw.load_table(ROOT / "latency_tables" / "note10-tflite.json")
    assert nse_hw.load_table(t) is t and t.meta["device"] == "note10"
    with pytest.raises(NseError, match="no latency table for device 'nosuch'.*tables by name: host-executorch"):
        nse_hw.load_table("nosuch")
    with pytest.raises(NseError, match="holds float32 latencies, not int8"):
        nse_hw.load_table("pixel1-tflite", precision="int8")


# --- predict_latency ---------------------------------------------------------------------------------------------

def test_predict_latency_is_what_the_cli_prints():
    for device in ("pixel1", "note10"):
        res = invoke("latency", "predict", MBV2, "--device", device, "--json")
        assert res.exit_code == 0, res.output
        cli = json.loads(res.output)
        report = nse_hw.predict_latency(MBV2, device=device)
        assert report.total_ms == pytest.approx(cli["total_ms"], rel=1e-12)
        assert list(report.filled_keys) == cli["predicted_keys"] and report.filled_keys
        assert [n for n, _ in report.components] == [layer["name"] for layer in cli["layers"]]
        assert [ms for _, ms in report.components] == pytest.approx([layer["ms"] for layer in cli["layers"]])


def test_report_rows_sum_and_name_their_sources(tiny_space, tmp_path):
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1,
                          "calibration": {"slope": 2.0, "intercept_ms": 1.0}})
    for i, k in enumerate(space_keys(tiny_space)):
        table.set(k, ms=0.5, source="measured" if i % 2 else "imported")
    table.save(tmp_path / "t.json")
    arch = tiny_space.arch([(tiny_space.pool[0],)] * 4)
    report = nse_hw.predict_latency(arch, table=tmp_path / "t.json")
    # 14 units of 0.5 ms (see test_cli_latency: stem, fixed+add+scale, 2x s2 op, 2x op+add+scale, head, classifier)
    assert report.lut_sum_ms == 7.0 and report.calibrated and report.total_ms == 2.0 * 7.0 + 1.0
    assert sum(r.ms for r in report.rows) == 7.0 and {r.source for r in report.rows} == {"measured", "imported"}
    assert report.rows[0].component == "stem" and report.rows[-1].component == "classifier"
    assert report.provenance["calibration"] == {"slope": 2.0, "intercept_ms": 1.0}
    d = json.loads(json.dumps(report.to_dict()))
    assert d["total_ms"] == 15.0 and len(d["rows"]) == len(report.rows) and d["filled_keys"] == []
    with pytest.raises(AttributeError):
        report.total_ms = 0.0  # frozen
    # a miss is an error naming the key (this table has no transfer model to predict it)
    del table.entries[report.rows[0].key]
    with pytest.raises(LatencyMiss, match=r"has no entry for conv_k3\|in=32x32x3"):
        nse_hw.predict_latency(arch, table=table)


def test_predict_latency_options():
    base = nse_hw.predict_latency(PROXYLESS)
    assert base.provenance["device"] == "pixel1" and base.filled_keys == ()  # default device; all keys imported
    assert base.total_ms == pytest.approx(predict(nse_hw.load_arch(PROXYLESS), nse_hw.load_table("pixel1")).total_ms)
    small = nse_hw.predict_latency(PROXYLESS, input_size=160)
    assert small.total_ms < base.total_ms and small.rows[0].key.startswith("conv_k3|in=160x160x3")
    with pytest.raises(LatencyMiss, match="has no entry for"):
        nse_hw.predict_latency(PROXYLESS, input_size=160, fill=False)
    own = nse_hw.load_table("pixel1")
    n = len(own.entries)
    assert nse_hw.predict_latency(MBV2, table=own).filled_keys and len(own.entries) == n  # the caller's table
    with pytest.raises(NseError, match="either device or table"):
        nse_hw.predict_latency(PROXYLESS, device="pixel1", table="host-litert")
    with pytest.raises(NseError, match="input 16x16 is smaller|too small|smaller than"):
        nse_hw.predict_latency(PROXYLESS, input_size=16)


# --- expected_latency --------------------------------------------------------------------------------------------

def _flat_table(space, ms=1.0, **meta):
    table = LatencyTable({"device": "host", "runtime": "litert", "threads": 1, **meta})
    for k in space_keys(space):
        table.set(k, ms=ms, source="measured")
    return table


def test_expected_latency_by_hand(tiny_space):
    """Every entry 1 ms. Fixed: stem 1 + fixed identity layer (op, add, scale) 3 + head 1 + classifier 1 = 6.
    Searchable: s2 (8->16), identity (16), s2 (16->24), identity (24). One candidate kept with p = 0.5:
    a layer that may not be empty keeps it for sure (1 ms); an identity layer costs p * (op + add + scale) = 1.5.
    """
    table = _flat_table(tiny_space)
    one = [("mb_k3_e3",)] * 4
    p = torch.full((4, 1), 0.5, requires_grad=True)
    ms = nse_hw.expected_latency(p, space=tiny_space, table=table, ops=one)
    assert float(ms.detach()) == pytest.approx(6 + 1 + 1.5 + 1 + 1.5)
    ms.backward()
    assert p.grad.flatten().tolist() == pytest.approx([0.0, 3.0, 0.0, 3.0])
    # two candidates at p = 0.5 in a layer that may not be empty: given N >= 1, N = 1 w.p. 2/3 (1 ms), N = 2
    # w.p. 1/3 (2 ops + add + scale = 4 ms): 2 ms. Identity layers: 2 * 0.5 + add * 1 + scale * 0.75 = 2.75.
    two = [("mb_k3_e3", "mb_k5_e3")] * 4
    ms2 = nse_hw.expected_latency([torch.full((2,), 0.5)] * 4, space=tiny_space, table=table, ops=two)
    assert float(ms2) == pytest.approx(6 + 2 + 2.75 + 2 + 2.75)
    cal = _flat_table(tiny_space, calibration={"slope": 2.0, "intercept_ms": 1.0})
    assert float(nse_hw.expected_latency(p.detach(), space="tiny", table=cal, ops=one)) == pytest.approx(2 * 11 + 1)


def test_expected_latency_at_certainty_is_the_prediction(nse27):
    table = nse_hw.load_table("host-litert")  # calibrated
    rng = torch.Generator().manual_seed(0)
    pick = torch.randint(0, len(nse27.pool), (len(nse27.searchable),), generator=rng)
    p = torch.nn.functional.one_hot(pick, len(nse27.pool)).float()
    arch = nse27.arch([(nse27.pool[int(i)],) for i in pick])
    assert float(nse_hw.expected_latency(p, space=nse27, table=table)) == pytest.approx(
        nse_hw.predict_latency(arch, table=table).total_ms, rel=1e-5)


def test_expected_latency_follows_the_probabilities_dtype(tiny_space):
    table = _flat_table(tiny_space)
    p = torch.full((4, 1), 0.5, dtype=torch.float64, requires_grad=True)
    ms = nse_hw.expected_latency(p, space=tiny_space, table=table, ops=[("mb_k3_e3",)] * 4)
    assert ms.dtype == torch.float64 and float(ms.detach()) == pytest.approx(11.0)


def test_expected_latency_refuses_mismatches(tiny_space):
    table = _flat_table(tiny_space)
    with pytest.raises(NseError, match="has 4 searchable layers; got probabilities for 3"):
        nse_hw.expected_latency(torch.full((3, 6), 0.5), space=tiny_space, table=table)
    with pytest.raises(NseError, match=r"layer 1: probabilities of shape \(5,\) for 6 candidate"):
        nse_hw.expected_latency([torch.full((6,), 0.5), torch.full((5,), 0.5)] * 2, space=tiny_space, table=table)
    with pytest.raises(NseError, match="op mb_k9_e6 is not in space tiny's pool"):
        nse_hw.expected_latency(torch.full((4, 1), 0.5), space=tiny_space, table=table, ops=[("mb_k9_e6",)] * 4)
    with pytest.raises(NseError, match="unknown|malformed"):
        nse_hw.expected_latency(torch.full((4, 1), 0.5), space=tiny_space, table=table, ops=[("conv9",)] * 4)
    with pytest.raises(NseError, match="unknown space 'nope'"):
        nse_hw.expected_latency(torch.full((4, 1), 0.5), space="nope", table=table)
    holes = _flat_table(tiny_space)
    del holes.entries[next(k for k in holes.entries if k.startswith("mb_k7_e3"))]
    with pytest.raises(LatencyMiss, match="has no entry for mb_k7_e3"):
        nse_hw.expected_latency(torch.full((4, 6), 0.5), space=tiny_space, table=holes)


# --- build_model -------------------------------------------------------------------------------------------------

def test_build_model(tiny_space):
    arch = tiny_space.arch([parse_layer(s) for s in ("mb_k3_e3", "skip", "mb_k5_e3+rec_k5_e2", "mb_k3_e3_d2")])
    net, again = (nse_hw.build_model(arch, num_classes=7, seed=0) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7) and net.arch.classes == 7
    assert nse_hw.build_model(arch, input_size=64).arch.input == (64, 64, 3)
    with pytest.raises(NseError, match="num_classes must be >= 1"):
        nse_hw.build_model(arch, num_classes=0)
    with pytest.raises(NseError):
        nse_hw.build_model(arch, input_size=2)


# --- search / train_model / export_model ---------------------------------------------------------------------

def test_search_on_the_tiny_setup(tmp_path):
    cfg, table = tiny_setup(tmp_path)
    budget = tiny_budget_ms()
    before = torch.get_num_threads()
    result = nse_hw.search(f"{budget}ms", table=table, config=cfg, out=tmp_path / "run", threads=1)
    assert torch.get_num_threads() == before
    written = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result.arch == nse_hw.load_arch(result.arch_file) and result.run_dir == tmp_path / "run"
    assert result.budget_ms == budget and result.predicted_ms <= budget
    assert result.predicted_ms == pytest.approx(written["predicted_ms"], abs=1e-4)
    assert result.predicted_ms == pytest.approx(nse_hw.predict_latency(result.arch, table=table).total_ms)
    assert result.accuracy == pytest.approx(written["proxy_heldout_top1"], abs=1e-5)
    assert json.loads(json.dumps(result.to_dict()))["arch_file"].endswith("arch.json")
    with pytest.raises(NseError, match="already holds a search run"):
        nse_hw.search(f"{budget}ms", table=table, config=cfg, out=tmp_path / "run")
    resumed = nse_hw.search(out=tmp_path / "run", resume=True)  # a finished run: the same final arch
    assert resumed.arch == result.arch


def test_search_refusals(tmp_path):
    cfg, table = tiny_setup(tmp_path)
    with pytest.raises(NseError, match="give a latency budget"):
        nse_hw.search(table=table, config=cfg)
    with pytest.raises(NseError, match="drop latency, table"):
        nse_hw.search("80ms", table=table, out=tmp_path, resume=True)
    with pytest.raises(NseError, match="give out="):
        nse_hw.search(resume=True)
    with pytest.raises(NseError, match="malformed latency"):
        nse_hw.search("fast", table=table, config=cfg, out=tmp_path / "r")
    with pytest.raises(NseError, match="below the fastest architecture"):
        nse_hw.search("0.001ms", table=table, config=cfg, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-train")
    space = load_space("tiny")
    arch = space.arch([parse_layer(s) for s in ("mb_k3_e3", "mb_k5_e3", "rec_k5_e2", "mb_k3_e3_d2")])
    (root / "c.yaml").write_text(ONE_EPOCH)
    result = nse_hw.train_model(arch, out=root / "run", config=root / "c.yaml", threads=1)
    table = fake_table(space)
    table.meta["runtime"] = "onnxruntime"  # the deployment file is then an .onnx: no second converter
    table.save(root / "ort.json")
    return root, arch, result


def test_train_model(trained):
    root, arch, result = trained
    assert result.run_dir == root / "run" and (root / "run" / "best.pt").is_file()
    assert 0.0 <= result.test_top1 <= 1.0 and result.epochs == 1
    assert nse_hw.load_arch(root / "run") == arch
    with pytest.raises(NseError, match="drop preset, config, epochs and seed"):
        nse_hw.train_model(arch, out=root / "run", epochs=2, resume=True)
    other = load_space("tiny").arch([(parse_op("mb_k3_e1"),)] * 4)
    with pytest.raises(NseError, match="another architecture"):
        nse_hw.train_model(other, out=root / "run", resume=True)


@pytest.mark.slow
def test_export_model_from_a_run(trained, tmp_path):
    root, arch, _ = trained
    result = nse_hw.export_model(root / "run", out=tmp_path / "x", formats=["onnx"], table=str(root / "ort.json"),
                                 verify_images=32, runs=5, warmup=1)
    names = [p.name for p in result.files]
    assert names == ["arch.json", "proxy_arch.json", "model.onnx", "deployment_random_weights.onnx",
                     "model_card.json"]
    assert all(p.is_file() for p in result.files) and result.card["verified"] is True
    assert result.card["latency"]["predicted_ms"] == pytest.approx(
        nse_hw.predict_latency(arch, table=str(root / "ort.json")).total_ms)
    with pytest.raises(NseError, match="exists and holds"):
        nse_hw.export_model(root / "run", out=tmp_path / "x", formats=["onnx"], table=str(root / "ort.json"))


@pytest.mark.slow
def test_export_model_from_a_module(tmp_path, tiny_space):
    net = nse_hw.build_model(tiny_space.arch([(parse_op("mb_k3_e3"),)] * 4), seed=0)
    result = nse_hw.export_model(net, out=tmp_path / "m", formats=["onnx"], verify_images=16, runs=5, warmup=1)
    assert [p.name for p in result.files] == ["model.onnx", "export.json"]
    report = json.loads((tmp_path / "m" / "export.json").read_text())
    assert report["verified"] and report["input_nchw"] == [1, 3, 32, 32]
    assert report["files"]["model.onnx"]["verification_vs_pytorch"]["max_abs_diff"] < 1e-3
    with pytest.raises(NseError, match="needs out="):
        nse_hw.export_model(net)
    with pytest.raises(NseError, match="need a training run"):
        nse_hw.export_model(net, out=tmp_path / "n", int8=True)
    with pytest.raises(NseError, match="cannot export a int"):
        nse_hw.export_model(3, out=tmp_path / "n")  # type: ignore[arg-type]


@pytest.mark.slow
def test_smoke_pipeline_as_in_the_docstrings(tmp_path):
    """search -> train_model -> export_model with the smoke presets: the calls the SKIPped examples show."""
    result = nse_hw.search("80ms", device="pixel1", preset="smoke", out=tmp_path / "smoke", threads=1)
    assert result.predicted_ms <= result.budget_ms and result.arch_file.name == "arch.json"
    trained = nse_hw.train_model(tmp_path / "smoke", out=tmp_path / "smoke" / "train", preset="smoke", threads=1)
    assert 0 <= trained.test_top1 <= 1
    exported = nse_hw.export_model(tmp_path / "smoke" / "train", formats=["tflite"], verify_images=100, runs=10,
                                   warmup=2)
    assert [p.name for p in exported.files] == ["arch.json", "proxy_arch.json", "model.tflite",
                                                "deployment_random_weights.tflite", "model_card.json"]
    assert exported.card["verified"] is True


def test_the_static_all_lists_exactly_the_lazy_names():
    assert nse_hw.__all__[0] == "__version__" and set(nse_hw.__all__[1:]) == set(nse_hw._LAZY)
    assert len(nse_hw.__all__) == len(set(nse_hw.__all__))


def test_the_readme_python_snippet_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert blocks, "the README shows the Python API"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip().endswith(" ms")
