"""Measurable units as standalone modules, and their exports, cached by what they are.

A table key (``mb_k5_e6|in=56x56x24|out=40|s=2``, ``head|...``, ``add|...``, ``scale|...``) or a whole arch
becomes an :class:`ExportJob`: a picklable description that a converter process can build (seeded weights,
eval mode) and export to ``.tflite`` (NHWC input) or ``.onnx`` (NCHW input). Identical jobs share one file in
the cache, so a shape is converted once per runtime, precision and exporter version.

int8 jobs go through :func:`nse_hw.export.tflite.export_tflite_int8`, the quantiser and recipe of
``nse-hw export --int8`` (litert-torch's PT2E quantiser, symmetric, per-channel weights, int8 activations and
int8 input/output tensors), calibrated on seeded N(0, 1) inputs: a block inside a network sees activations, not
images, and its weights are random, so only the quantised ops matter for latency, not the scales.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nse_hw.errors import NseError
from nse_hw.space.arch import Arch, Shape

SUFFIX = {"litert": ".tflite", "onnxruntime": ".onnx", "executorch": ".pte"}
EXPORTER = {"litert": "litert-torch", "onnxruntime": "onnx", "executorch": "executorch"}  # shapes the file
INT8_RUNTIMES = ("litert", "executorch")  # int8 units: export --int8's quantiser (litert), ExecuTorch's own
UNIT_SEED = 0
INT8_CALIBRATION = 4  # seeded N(0, 1) inputs that calibrate an int8 unit (latency does not depend on the scales)


def default_cache() -> Path:
    """``$NSE_HW_CACHE`` or ``~/.cache/nse-hw/exports``."""
    env = os.environ.get("NSE_HW_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nse-hw" / "exports"


class Add(nn.Module):
    """One element-wise add of two distinct tensors.

    The runners feed one input, so the second term is a constant of the same shape: it costs what a second
    input does (measured with LiteRT: equal within 2%), whereas ``x + x`` reads one buffer and is up to 2x cheaper.
    """

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        h, w, c = shape
        self.register_buffer("other", torch.randn(1, c, h, w))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.other


class Scale(nn.Module):
    """The constant multiply that turns a layer's sum of terms into their mean."""

    def __init__(self, factor: float = 0.5) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


@dataclass(frozen=True)
class ExportJob:
    """What to build and export: a table key or an arch (JSON text), with a weight seed."""

    name: str  # a table key, or "arch:<sha>" for a whole network
    arch_json: str | None = None
    prefix: int | None = None  # for arch jobs: keep the stem and this many layers only (no head)
    seed: int = UNIT_SEED
    precision: str = "float32"  # or "int8" (litert only)

    @classmethod
    def for_key(cls, key: str, *, precision: str = "float32") -> ExportJob:
        from nse_hw.latency.keys import parse_key
        from nse_hw.latency.table import check_precision

        parse_key(key)  # fail here, in the caller, on a malformed key
        return cls(key, precision=check_precision(precision))

    @classmethod
    def for_arch(cls, arch: Arch, *, seed: int = UNIT_SEED, prefix: int | None = None,
                 precision: str = "float32") -> ExportJob:
        from nse_hw.latency.table import check_precision

        text = json.dumps(_identity(arch), sort_keys=True)
        tag = f"arch:{arch_hash(arch)}" + (f":prefix{prefix}" if prefix is not None else "")
        return cls(tag, text, prefix, seed, check_precision(precision))

    def file_name(self, runtime: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)
        tail = "" if self.precision == "float32" else f"_{self.precision}"
        return f"{safe}_seed{self.seed}{tail}{SUFFIX[runtime]}"


def _identity(arch: Arch) -> dict:
    d = arch.to_dict()
    d.pop("meta", None)  # free-form, not part of what the network is
    return d


def arch_hash(arch: Arch) -> str:
    """A short content hash of an arch (its layers and skeleton, not its meta)."""
    return hashlib.sha256(json.dumps(_identity(arch), sort_keys=True).encode()).hexdigest()[:16]


def exporter_version(runtime: str) -> str:
    try:
        return version(EXPORTER[runtime])
    except PackageNotFoundError:
        return "unknown"


def cache_path(job: ExportJob, *, runtime: str, cache: Path) -> Path:
    """Where ``job``'s export lives: one folder per runtime, exporter, torch and nse-hw version."""
    from nse_hw import __version__

    tag = f"{runtime}-{EXPORTER[runtime]}{exporter_version(runtime)}-torch{torch.__version__}-nse{__version__}"
    return Path(cache) / tag / job.file_name(runtime)


def build_unit(job: ExportJob) -> tuple[nn.Module, Shape]:
    """The eval-mode module of ``job`` with seeded weights, and its input shape (H, W, C)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(job.seed)
        model, shape = _arch_module(job) if job.arch_json is not None else _key_module(job.name)
    return model.eval(), shape


def _key_module(key: str) -> tuple[nn.Module, Shape]:
    from nse_hw.blocks import Classifier, Head, build_op
    from nse_hw.latency.keys import parse_key

    spec = parse_key(key)
    if spec.kind == "op":
        assert spec.op is not None
        return build_op(spec.op, spec.shape[2], spec.out, spec.stride), spec.shape
    if spec.kind == "head":
        return Head(spec.shape[2], spec.out, spec.act), spec.shape
    if spec.kind == "classifier":
        return Classifier(spec.shape[2], spec.out), spec.shape
    return (Add(spec.shape) if spec.kind == "add" else Scale()), spec.shape


def _arch_module(job: ExportJob) -> tuple[nn.Module, Shape]:
    from nse_hw.blocks import Net

    assert job.arch_json is not None
    arch = Arch.from_dict(json.loads(job.arch_json))
    net = Net(arch)
    if job.prefix is None:
        return net, arch.input
    return nn.Sequential(net.stem, *list(net.layers)[: job.prefix]), arch.input


def check_job_runtime(job: ExportJob, runtime: str) -> None:
    """int8 units exist for LiteRT (the quantiser of ``nse-hw export --int8``) and ExecuTorch (its own flow)."""
    if job.precision != "float32" and runtime not in INT8_RUNTIMES:
        raise NseError(f"{job.precision} units can be exported for runtime {' or '.join(INT8_RUNTIMES)} only, "
                       f"not {runtime!r}")


def int8_calibration(shape: Shape, *, seed: int, n: int = INT8_CALIBRATION) -> np.ndarray:
    """``n`` seeded N(0, 1) NHWC inputs of ``shape`` (H, W, C) that calibrate an int8 unit."""
    return np.random.default_rng(seed).standard_normal((n, *shape), dtype=np.float32)


def export_job(job: ExportJob, *, runtime: str, cache: Path, work: Path | None = None) -> Path:
    """Export ``job`` into the cache unless it is there already; returns the file.

    ``work``: a folder on the cache's file system to export in, then move the file from (so a killed export
    leaves its temp files there, not beside the cache's files).
    """
    check_job_runtime(job, runtime)
    path = cache_path(job, runtime=runtime, cache=cache)
    if path.is_file():
        return path
    model, (h, w, c) = build_unit(job)
    tmp = path if work is None else Path(work) / path.name
    if runtime == "executorch":
        from nse_hw.export.pte import export_pte, export_pte_int8

        if job.precision == "int8":
            export_pte_int8(model, (1, c, h, w), tmp, [int8_calibration((h, w, c), seed=job.seed)])
        else:
            export_pte(model, (1, c, h, w), tmp)
    elif job.precision == "int8":
        from nse_hw.export.tflite import export_tflite_int8

        export_tflite_int8(model, (1, h, w, c), tmp, [int8_calibration((h, w, c), seed=job.seed)])
    elif runtime == "litert":
        from nse_hw.export.tflite import export_tflite

        export_tflite(model, (1, h, w, c), tmp)
    else:
        from nse_hw.export.onnx import export_onnx

        export_onnx(model, (1, c, h, w), tmp)
    if tmp != path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)  # same file system: atomic
    return path
