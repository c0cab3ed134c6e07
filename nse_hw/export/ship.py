"""Ship a trained checkpoint: verified float32/int8 ``.tflite`` and ``.onnx``, a deployment-shaped ``.tflite`` for
latency, and ``model_card.json``.

Everything that can refuse (checkpoint, input size, output directory, latency table, calibration data) is
checked before the first conversion, so bad input costs seconds and writes nothing. Runtimes come in through
:class:`HostRuntimes` (the CLI adapts ``profilers.host``): export itself only takes plain networks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from nse_hw.atomic import atomic_write_json, exclusive_dir, fsync_dir, is_bookkeeping
from nse_hw.blocks import build_network
from nse_hw.errors import NseError
from nse_hw.export.card import CARD_NAME, build_card, file_info, kernels_comparison, latency_section
from nse_hw.export.locate import locate_failure
from nse_hw.export.verify import Comparison, torch_logits, verify
from nse_hw.latency import LatencyTable, Prediction, load_table, predict
from nse_hw.latency.hosttables import default_host_table
from nse_hw.latency.table import table_kernels
from nse_hw.space import Arch, load_arch, save_arch
from nse_hw.train.data import load_data
from nse_hw.train.rundir import BEST, RESULT
from nse_hw.train.trainer import eval_state_dict, load_weights, read_train_checkpoint

log = logging.getLogger(__name__)
FORMATS = ("tflite", "onnx")  # what --format all writes; "pte" (ExecuTorch, an optional extra) on request
EXTRA_FORMATS = ("pte",)
RUNTIME_FORMAT = {"litert": "tflite", "onnxruntime": "onnx", "executorch": "pte"}
DEPLOY_STEM = "deployment_random_weights"
DEPLOY_INT8_CALIBRATION = 4  # seeded N(0, 1) inputs, as the int8 table's units and validation networks have


class HostRuntimes(Protocol):
    """Load a model file into a session (``run(x)``, ``input_shape``) and time it on this host."""

    def load(self, path: Path, runtime: str, *, threads: int, kernels: str = "xnnpack") -> Any: ...

    def time(self, session: Any, *, warmup: int, runs: int) -> dict[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = FORMATS
    int8: bool = False
    input_size: int | None = None  # default: the resolution it was trained at
    out: Path | None = None  # default: RUN_DIR/export (or <checkpoint dir>/export)
    force: bool = False
    table: str | None = None  # default: this CPU's host-litert table, else latency_tables/host-litert.json
    int8_table: str | None = None  # with int8: default latency_tables/host-litert-int8.json
    data: str | None = None  # default: the data source recorded in the checkpoint
    verify_images: int = 1000
    calibration_images: int = 200
    runs: int = 200
    warmup: int = 20
    threads: int = 1
    seed: int = 0


@dataclass
class ExportReport:
    out: Path
    card: dict[str, Any]
    failures: list[str] = field(default_factory=list)  # float verifications that did not pass


def total_stride(arch: Arch) -> int:
    stride = arch.stem_stride
    for spec in arch.layers:
        stride *= spec.stride
    return stride


def check_input_size(proxy: Arch, size: int | None) -> int:
    size = proxy.input[0] if size is None else size
    if size < 1:
        raise NseError(f"input size {size} must be positive")
    need = total_stride(proxy)
    if size < need:
        raise NseError(f"input size {size} is too small for this architecture (total stride {need}; "
                       f"needs >= {need})")
    return size


def resolve_checkpoint(source: str | Path) -> tuple[Path, Path | None]:
    """CHECKPOINT file, or RUN_DIR (a training run: its best.pt). Also the run dir, when there is one."""
    p = Path(source)
    if p.is_dir():
        if not (p / BEST).is_file():
            raise NseError(f"{p} holds no {BEST} (expected a training run directory or a checkpoint file)")
        return p / BEST, p
    if not p.is_file():
        raise NseError(f"no checkpoint or run directory at {p}")
    return p, p.parent if (p.parent / RESULT).is_file() else None


def prepare_out(out: Path, *, force: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise NseError(f"output path {out} is a file, not a directory")
    ours = [p for p in out.iterdir() if not is_bookkeeping(p)] if out.is_dir() else []
    if ours and not force:
        n = len(ours)
        raise NseError(f"output directory {out} exists and holds {n} file(s); pass --force to overwrite")
    return out


def resolve_prediction(arch: Arch, table_arg: str | None, *, precision: str = "float32",
                       here: dict[str, Any] | None = None) -> tuple[LatencyTable, Prediction]:
    """The table (``table_arg``, else this CPU's host-litert table of ``precision``, else the shipped one) and
    its prediction of ``arch``. A missing file is an error listing the shipped tables; a table of another
    precision is refused."""
    default = default_host_table(here or {}, runtime="litert", precision=precision)
    table = load_table(table_arg or default, precision=precision)
    if precision != "float32" and table.meta.get("runtime") != "litert":
        raise NseError(f"latency table {table.path} is for runtime {table.meta.get('runtime')!r}; {precision} "
                       "deployment files are .tflite (litert)")
    if table.meta.get("runtime") not in RUNTIME_FORMAT:
        raise NseError(f"latency table {table.path} is for runtime {table.meta.get('runtime')!r}; this host "
                       f"measures {', '.join(RUNTIME_FORMAT)}")
    return table, predict(arch, table)  # a miss is an error naming the key: before any conversion


@dataclass
class Images:
    test_x: torch.Tensor  # NCHW float32, normalised as in training
    test_y: np.ndarray | None
    calibration: np.ndarray | None  # NHWC float32 training images
    inputs: str
    reference: np.ndarray | None = None  # PyTorch's logits on test_x: one pass serves every file


def _stack(ds: Any) -> tuple[torch.Tensor, np.ndarray]:
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return torch.stack(xs).float(), np.asarray([int(y) for y in ys])


def load_images(state: dict[str, Any], opts: ExportOptions, *, size: int, proxy: Arch) -> Images:
    """Real test images to verify on and training images to calibrate int8 on (same normalisation)."""
    spec, source = state["data"], opts.data or state["data"]["source"]
    try:
        bundle = load_data(source, resolution=size, seed=opts.seed, limit_train=max(opts.calibration_images, 1),
                           limit_heldout=1, limit_test=opts.verify_images)
    except (NseError, ValueError, OSError) as exc:
        if opts.int8:
            raise NseError(f"--int8 needs calibration images from the training data, but {source!r} cannot be "
                           f"loaded ({exc}); pass --data PATH") from None
        log.warning("no test data (%s): verifying on random inputs only, without top-1", exc)
        x = torch.randn((min(opts.verify_images, 100), proxy.input[2], size, size),
                        generator=torch.Generator().manual_seed(opts.seed))
        return Images(x, None, None, f"random normal (test data unavailable: {exc})")
    if (bundle.channels, bundle.classes) != (proxy.input[2], proxy.classes) or \
            [round(v, 6) for v in bundle.mean] != [round(v, 6) for v in spec["mean"]]:
        raise NseError(f"data {source!r} ({bundle.channels} channels, {bundle.classes} classes) is not what the "
                       f"checkpoint was trained on ({spec['name']}: {proxy.input[2]} channels, {proxy.classes})")
    test_x, test_y = _stack(bundle.test)
    calib = None
    if opts.int8:
        calib = _stack(bundle.train)[0][:opts.calibration_images].permute(0, 2, 3, 1).contiguous().numpy()
    return Images(test_x, test_y, calib, f"{len(test_y)} {spec['name']} test images")


def convert_model(kind: str, model: nn.Module, nchw: tuple[int, int, int, int], path: Path, **kw: Any) -> Path:
    """Convert; on failure name the failing op (from the converter) and the layer (by converting parts)."""
    from nse_hw.export.onnx import export_onnx
    from nse_hw.export.tflite import export_tflite, export_tflite_int8

    def nhwc(s: tuple[int, ...]) -> tuple[int, int, int, int]:
        return (s[0], s[2], s[3], s[1]) if len(s) == 4 else s  # type: ignore[return-value]

    def pte(int8: bool) -> Any:
        from nse_hw.export.pte import export_pte, export_pte_int8

        return (lambda m, s, p: export_pte_int8(m, s, p, **kw)) if int8 else (lambda m, s, p: export_pte(m, s, p))

    fns = {"pte": pte(False), "pte_int8": pte(True), "tflite": lambda m, s, p: export_tflite(m, nhwc(s), p),
           "int8": lambda m, s, p: export_tflite_int8(m, nhwc(s), p, **kw),
           "onnx": lambda m, s, p: export_onnx(m, s, p)}
    try:
        return fns[kind](model, nchw, path)
    except NseError as exc:
        if len(list(model.children())) < 2 or " in layer " in str(exc):  # pte names the layer itself
            raise
        op = m.group(1) if (m := re.search(r"at op ([\w.]+)", str(exc))) else None
        where = locate_failure(model, torch.zeros(nchw), fns["onnx" if kind == "onnx" else "tflite"], op)
        raise NseError(f"{exc}" + (f" (in layer {where})" if where else "")) from exc


def _timed(host: HostRuntimes, path: Path, runtime: str, opts: ExportOptions, *, threads: int,
           kernels: str = "xnnpack") -> Any:
    session = host.load(path, runtime, threads=threads, kernels=kernels) if kernels != "xnnpack" else \
        host.load(path, runtime, threads=threads)
    return session, host.time(session, warmup=opts.warmup, runs=opts.runs)


def _verified_file(host: HostRuntimes, model: nn.Module, path: Path, runtime: str, layout: str, images: Images,
                   opts: ExportOptions, what: str) -> tuple[dict[str, Any], Comparison]:
    session, timing = _timed(host, path, runtime, opts, threads=opts.threads)
    cmp = verify(model, session.run, images.test_x, images.test_y, layout=layout, inputs=images.inputs,
                 reference=images.reference)
    entry = {"what": what, "runtime": runtime, "input_layout": layout, **file_info(path),
             "verification_vs_pytorch": cmp.to_dict(), "latency_host": {**timing, "threads": opts.threads}}
    log.info("%s: max |diff| %.2e, top-1 agreement %.2f%%, %.3f ms", path.name, cmp.max_abs_diff,
             100 * cmp.top1_agreement, timing["ms"])
    return entry, cmp


_FLOAT_FILES = {"tflite": ("model.tflite", "litert", "NHWC"), "onnx": ("model.onnx", "onnxruntime", "NCHW"),
                "pte": ("model.pte", "executorch", "NCHW")}


def _float_file(fmt: str, model: nn.Module, nchw: tuple[int, int, int, int], out: Path, images: Images,
                opts: ExportOptions, host: HostRuntimes, report: ExportReport,
                files: dict[str, dict[str, Any]]) -> Comparison:
    """Convert, verify and record one float32 file; a failed check is a report failure."""
    name, runtime, layout = _FLOAT_FILES[fmt]
    path = convert_model(fmt, model, nchw, out / name)
    files[name], cmp = _verified_file(host, model, path, runtime, layout, images, opts,
                                      "trained proxy network, float32")
    if not cmp.passes_float():
        report.failures.append(f"{name}: {cmp.to_dict()}")
    return cmp


def _export_proxy_files(model: nn.Module, nchw: tuple[int, int, int, int], out: Path, images: Images,
                        opts: ExportOptions, host: HostRuntimes, report: ExportReport) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    float_cmp: Comparison | None = None
    for fmt in ("tflite", "pte"):
        if fmt in opts.formats:
            float_cmp = _float_file(fmt, model, nchw, out, images, opts, host, report, files)
            if opts.int8:
                _int8_file(fmt, model, nchw, out, images, opts, host, files, float_cmp)
    if "onnx" in opts.formats:
        _float_file("onnx", model, nchw, out, images, opts, host, report, files)
    return files


def _int8_file(fmt: str, model: nn.Module, nchw: tuple[int, int, int, int], out: Path, images: Images,
               opts: ExportOptions, host: HostRuntimes, files: dict[str, dict[str, Any]],
               float_cmp: Comparison | None) -> None:
    """The int8 twin of the float ``fmt`` file: converted, verified, compared with the float one."""
    float_name, runtime, layout = _FLOAT_FILES[fmt]
    kind, how = ("int8", "litert-torch PT2E") if fmt == "tflite" else ("pte_int8", "ExecuTorch XNNPACKQuantizer")
    path = convert_model(kind, model, nchw, out / f"model_int8.{fmt}", calibration=[images.calibration])
    entry, cmp = _verified_file(host, model, path, runtime, layout, images, opts,
                                f"trained proxy network, int8 PTQ ({how}, {len(images.calibration)} calibration "
                                "training images)")
    f32 = files[float_name]
    entry[f"vs_float_{fmt}"] = {
        "top1_drop_points": (100 * (float_cmp.top1_file - cmp.top1_file)
                             if float_cmp and float_cmp.top1_file is not None and cmp.top1_file is not None else None),
        "size_ratio": entry["bytes"] / f32["bytes"],
        "latency_ratio": entry["latency_host"]["ms"] / f32["latency_host"]["ms"]}
    files[path.name] = entry


def _deployment_file(arch: Arch, table: LatencyTable, out: Path, opts: ExportOptions, host: HostRuntimes, *,
                     int8: bool = False) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The deployment-shaped network (random weights) in the table's runtime, timed with the table's threads.

    ``int8``: quantised as the int8 table's units were (export --int8's quantiser, seeded N(0, 1) calibration:
    the deployment input has no real images here, and latency does not depend on the scales)."""
    runtime = table.meta["runtime"]
    kind = "int8" if int8 else RUNTIME_FORMAT[runtime]
    threads = int(table.meta.get("threads") or opts.threads)
    h, w, c = arch.input
    kw = {"calibration": [np.random.default_rng(opts.seed).standard_normal(
        (DEPLOY_INT8_CALIBRATION, h, w, c), dtype=np.float32)]} if int8 else {}
    name = f"{DEPLOY_STEM}_int8.tflite" if int8 else f"{DEPLOY_STEM}.{kind}"
    path = convert_model(kind, build_network(arch, seed=opts.seed), (1, c, h, w), out / name, **kw)
    kernels = table_kernels(table.meta) or "xnnpack"
    _, timing = _timed(host, path, runtime, opts, threads=threads, kernels=kernels)
    measured = {**timing, "threads": threads, "warmup": opts.warmup,
                "kernels": kernels if runtime == "litert" else None}
    if int8:  # which LiteRT kernel path runs int8 faster depends on the CPU (RESULTS-deployment.md): time both
        other = "builtin" if kernels == "xnnpack" else "xnnpack"
        _, t_other = _timed(host, path, runtime, opts, threads=threads, kernels=other)
        measured["kernels_compared"] = kernels_comparison({kernels: timing, other: t_other})
    what = "int8 PTQ (N(0,1) calibration) " if int8 else ""
    entry = {"what": f"deployment-shaped network (arch.json as written), {what}RANDOM weights: for latency only, "
                     "never for inference", "runtime": runtime,
             "input_layout": "NHWC" if kind != "onnx" else "NCHW", **file_info(path), "latency_host": measured}
    log.info("%s: %.3f ms median (%d runs, %d thread(s))", path.name, timing["ms"], timing["n"], threads)
    return path.name, entry, measured


def export_checkpoint(source: str | Path, opts: ExportOptions, host: HostRuntimes) -> ExportReport:
    """Export, verify and measure a trained checkpoint; write everything and model_card.json into the out dir."""
    bad = [f for f in opts.formats if f not in FORMATS + EXTRA_FORMATS]
    if bad or not opts.formats:
        raise NseError(f"unknown export format(s) {bad or opts.formats}; choose from "
                       f"{', '.join(FORMATS + EXTRA_FORMATS)}")
    if opts.int8 and not {"tflite", "pte"} & set(opts.formats):
        raise NseError("--int8 makes an int8 .tflite (or .pte) beside the float one: use --format tflite, pte or all")
    if "pte" in opts.formats:
        from nse_hw.export.pte import require_executorch

        require_executorch()  # one line naming how to install it, before any work
    ckpt_path, run_dir = resolve_checkpoint(source)
    state = read_train_checkpoint(ckpt_path)
    arch, proxy = Arch.from_dict(state["arch"]), Arch.from_dict(state["proxy_arch"])
    if run_dir is not None and (run_dir / "arch.json").is_file() and load_arch(run_dir / "arch.json") != arch:
        raise NseError(f"{ckpt_path} was trained for another architecture than {run_dir / 'arch.json'}")
    model = build_network(proxy)
    weights, which = eval_state_dict(state)
    load_weights(model, weights, source=str(ckpt_path), arch=proxy)
    size = check_input_size(proxy, opts.input_size)
    out = prepare_out(opts.out or (run_dir or ckpt_path.parent) / "export", force=opts.force)
    host_info = host.describe()  # this CPU: which tables are its own, and the card's record of it
    here = host_info.get("cpu_fingerprint") or {}
    table, pred = resolve_prediction(arch, opts.table, here=here)
    int8_pred = resolve_prediction(arch, opts.int8_table, precision="int8", here=here) if opts.int8 else None
    images = load_images(state, opts, size=size, proxy=proxy)
    images = replace(images, reference=torch_logits(model, images.test_x))

    report = ExportReport(out, {})
    with exclusive_dir(out), _staging(out) as stage:  # a crash leaves the old files, never half of a new set
        save_arch(arch, stage / "arch.json")
        save_arch(proxy, stage / "proxy_arch.json")
        files = _export_proxy_files(model, (1, proxy.input[2], size, size), stage, images, opts, host, report)
        deploy_name, deploy_entry, measured = _deployment_file(arch, table, stage, opts, host)
        files[deploy_name] = deploy_entry
        latency = latency_section(arch, table, pred, measured, deploy_name, here=here)
        if int8_pred is not None:  # what ships int8 is predicted by the int8 table and measured int8
            name8, entry8, measured8 = _deployment_file(arch, int8_pred[0], stage, opts, host, int8=True)
            files[name8] = entry8
            latency["int8"] = latency_section(arch, *int8_pred, measured8, name8, target=False, here=here)
        first = next(iter(files.values()))["verification_vs_pytorch"]
        accuracy = {"weights": f"{ckpt_path.name} ({which})", "test_top1_pytorch": first["top1_torch"],
                    "verified_on": images.inputs,
                    "training_result": json.loads((run_dir / RESULT).read_text()) if run_dir else None}
        report.card = build_card(arch=arch, proxy=proxy, data=state["data"], size=size, files=files,
                                 latency=latency,
                                 accuracy=accuracy, checkpoint=ckpt_path, host=host_info,
                                 verified=not report.failures)
        atomic_write_json(stage / CARD_NAME, report.card)
        _publish(stage, out)
    return report


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temp directory inside ``out`` for the new files (removed afterwards, or by the next export if killed)."""
    stage = Path(tempfile.mkdtemp(prefix=".export.", suffix=".tmp", dir=out))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out: Path) -> None:
    """Move the finished files into ``out``: the old card goes first and the new one last, so a model_card.json
    only ever stands beside the complete set of files it describes."""
    (out / CARD_NAME).unlink(missing_ok=True)
    for path in sorted(stage.iterdir(), key=lambda p: p.name == CARD_NAME):
        os.replace(path, out / path.name)
    fsync_dir(out)
