"""Runtimes on this host: LiteRT (``.tflite``, XNNPACK), ONNX Runtime (``.onnx``, CPU EP) and ExecuTorch (``.pte``,
XNNPACK delegate; an optional extra).

A :class:`Runner` loads a model file into a :class:`Session`, which can run it on real input
(numerical verification) and time it. Timing follows DESIGN.md "Measuring honestly": explicit
thread counts, a fixed random input bound once, ``perf_counter_ns`` around the invoke call
only, warm-up runs first, the garbage collector off while timing, and the median reported.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nse_hw.errors import NseError
from nse_hw.export._native_stderr import native_stderr_to_log

log = logging.getLogger(__name__)


class Session(ABC):
    """One loaded single-input, single-output model with a static input shape."""

    input_shape: tuple[int, ...]
    input_dtype: str = "float32"  # of the model's input tensor: "int8" for a full-integer int8 .tflite

    def run(self, x: np.ndarray) -> np.ndarray:
        """Float output for float input ``x`` in the model's layout (a batch-1 model takes any batch)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape == self.input_shape:
            return self._run_one(x)
        if self.input_shape[0] == 1 and x.ndim == len(self.input_shape) and x.shape[1:] == self.input_shape[1:]:
            return np.concatenate([self._run_one(x[i:i + 1]) for i in range(x.shape[0])])
        raise NseError(f"input shape {x.shape} does not fit the model's {self.input_shape}")

    def time(self, *, warmup: int, runs: int, before_each: Callable[[], None] | None = None) -> np.ndarray:
        """Per-invoke wall times in ms of ``runs`` invokes on a fixed random input, after ``warmup``.

        ``before_each`` runs untimed before each timed invoke (e.g. to evict the caches); the input is then
        rewritten too, so it is hot, as the previous layer's output would be.
        """
        if warmup < 0 or runs < 1:
            raise NseError(f"need warmup >= 0 and runs >= 1, got warmup={warmup}, runs={runs}")
        self._bind_timing_input()
        for _ in range(warmup):
            self._invoke()
        times = np.empty(runs, dtype=np.int64)
        gc_was_enabled = gc.isenabled()
        gc.disable()  # a collection inside a timed invoke is noise, not model latency
        try:
            for i in range(runs):
                if before_each is not None:
                    before_each()
                    self._bind_timing_input()
                t0 = time.perf_counter_ns()
                self._invoke()
                times[i] = time.perf_counter_ns() - t0
        finally:
            if gc_was_enabled:
                gc.enable()
        return times / 1e6

    def _timing_input(self) -> np.ndarray:
        return np.random.default_rng(0).standard_normal(self.input_shape, dtype=np.float32)

    @abstractmethod
    def _run_one(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _bind_timing_input(self) -> None: ...

    @abstractmethod
    def _invoke(self) -> None: ...


class Runner(ABC):
    """A runtime with a fixed thread count; ``load`` gives a :class:`Session`."""

    name: ClassVar[str]

    def __init__(self, *, threads: int) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise NseError(f"threads must be an integer >= 1, got {threads!r}")
        self.threads = threads

    @property
    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def load(self, path: str | Path) -> Session: ...

    kernels: str | None = None  # LiteRT's op resolver path (xnnpack or builtin); other runtimes have one path

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, threads={self.threads}, "
                f"kernels={self.kernels!r})")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise NseError(f"model file {path} does not exist")
    return path


# --- LiteRT -------------------------------------------------------------------------------------------------

def _quantize(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Float -> the tensor's dtype with its (scale, zero_point); a float tensor passes through."""
    scale, zero = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f" or not scale:
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    scale, zero = detail["quantization"]
    if y.dtype.kind == "f" or not scale:
        return y.astype(np.float32)
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


KERNELS = ("xnnpack", "builtin")  # LiteRT's op resolver paths: default (XNNPACK delegate) or builtin kernels only


def check_kernels(kernels: str, runtime: str = "litert") -> str:
    """``kernels`` if it is a LiteRT kernel path (any runtime takes the default ``xnnpack``)."""
    if kernels not in KERNELS:
        raise NseError(f"--kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    if kernels != "xnnpack" and runtime != "litert":
        raise NseError(f"--kernels {kernels} is a LiteRT op resolver choice; runtime {runtime} has no such path")
    return kernels


class _LiteRTSession(Session):
    def __init__(self, path: Path, threads: int, kernels: str = "xnnpack") -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # xnnpack: the default op resolver, XNNPACK delegate applied (as benchmark_model does on a phone);
        # builtin: TFLite's own kernels (ruy / optimized_ops), no default delegate.
        resolver = (OpResolverType.AUTO if kernels == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            with native_stderr_to_log(log, "litert"):  # "INFO: Created ... XNNPACK delegate"
                self._it = Interpreter(model_path=str(path), num_threads=threads,
                                       experimental_op_resolver_type=resolver)
                self._it.allocate_tensors()  # once: invoke() reuses the arena
        except (ValueError, RuntimeError) as exc:
            raise NseError(f"LiteRT cannot load {path}: {str(exc).strip().splitlines()[0]}") from exc
        ins, outs = self._it.get_input_details(), self._it.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise NseError(f"{path} has {len(ins)} inputs and {len(outs)} outputs; expected 1 and 1")
        self._in, self._out = ins[0], outs[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self.input_dtype = np.dtype(self._in["dtype"]).name

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        self._it.set_tensor(self._in["index"], _quantize(x, self._in))
        self._it.invoke()
        return _dequantize(self._it.get_tensor(self._out["index"]), self._out)

    def _bind_timing_input(self) -> None:
        self._it.set_tensor(self._in["index"], _quantize(self._timing_input(), self._in))

    def _invoke(self) -> None:
        self._it.invoke()


class LiteRTRunner(Runner):
    """``ai_edge_litert`` Interpreter; int8 models take and give float (quantised for you).

    ``kernels``: ``xnnpack`` (LiteRT's default: the XNNPACK delegate takes what it supports) or ``builtin``
    (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: TFLite's builtin kernels). Which path is faster
    depends on the CPU, for int8 by up to ~7x (benchmarks/deployment/RESULTS-deployment.md), so it is part of what a
    table measures (``meta.kernels``).
    """

    name = "litert"

    def __init__(self, *, threads: int, kernels: str = "xnnpack") -> None:
        super().__init__(threads=threads)
        self.kernels = check_kernels(kernels)

    @property
    def version(self) -> str:
        try:
            return version("ai-edge-litert")
        except PackageNotFoundError:
            return "unknown"

    def load(self, path: str | Path) -> Session:
        return _LiteRTSession(_existing(path), self.threads, self.kernels)


# --- ONNX Runtime -------------------------------------------------------------------------------------------

class _OrtSession(Session):
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1  # one chain of ops: parallelism only inside an op
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (pybind) exception types
            raise NseError(f"ONNX Runtime cannot load {path}: {str(exc).strip().splitlines()[0]}") from exc
        ins, outs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            raise NseError(f"{path} has {len(ins)} inputs and {len(outs)} outputs; expected 1 and 1")
        if not all(isinstance(d, int) for d in ins[0].shape):
            raise NseError(f"{path} has a dynamic input shape {ins[0].shape}; export with a static shape")
        self._in_name, self._out = ins[0].name, outs[0]
        self.input_shape = tuple(ins[0].shape)
        self._ort = ort
        self._binding = self._sess.io_binding()

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._sess.run([self._out.name], {self._in_name: x})[0], dtype=np.float32)

    def _bind_timing_input(self) -> None:
        # Input and (static-shape) output live in OrtValues bound once, so a timed run copies and
        # allocates nothing - the same footing as LiteRT's preallocated tensors.
        ort, b = self._ort, self._binding
        b.clear_binding_inputs()
        b.clear_binding_outputs()
        self._x = ort.OrtValue.ortvalue_from_numpy(self._timing_input())
        b.bind_ortvalue_input(self._in_name, self._x)
        if all(isinstance(d, int) for d in self._out.shape):
            self._y = ort.OrtValue.ortvalue_from_shape_and_type(self._out.shape, np.float32)
            b.bind_ortvalue_output(self._out.name, self._y)
        else:
            b.bind_output(self._out.name)

    def _invoke(self) -> None:
        self._sess.run_with_iobinding(self._binding)


class OrtRunner(Runner):
    """ONNX Runtime, CPU execution provider, sequential, all graph optimisations."""

    name = "onnxruntime"

    @property
    def version(self) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    def load(self, path: str | Path) -> Session:
        return _OrtSession(_existing(path), self.threads)


# --- ExecuTorch ---------------------------------------------------------------------------------------------

_ET_THREADS: list[int] = []  # the thread count this process's ExecuTorch threadpool was set to


def _set_et_threads(threads: int, reset: Callable[[int], None]) -> None:
    """ExecuTorch's XNNPACK threadpool belongs to the process, and resetting it under loaded programs crashes
    them (measured: SIGSEGV): one thread count per process, set before the first program loads."""
    if _ET_THREADS and _ET_THREADS[0] != threads:
        raise NseError(f"ExecuTorch runs with one thread count per process; this one uses {_ET_THREADS[0]}, "
                       f"not {threads} (time other thread counts in another process)")
    if not _ET_THREADS:
        with native_stderr_to_log(log, "executorch"):  # "Resetting threadpool to N threads."
            reset(threads)
        _ET_THREADS.append(threads)


class _EtSession(Session):
    """An ExecuTorch program's ``forward`` in ExecuTorch's Python runtime (XNNPACK delegate, NCHW float input)."""

    def __init__(self, path: Path, threads: int) -> None:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        _set_et_threads(threads, _unsafe_reset_threadpool)
        try:
            with native_stderr_to_log(log, "executorch"):  # cpuinfo notices
                self._method = Runtime.get().load_program(str(path)).load_method("forward")
        except (ValueError, RuntimeError) as exc:
            raise NseError(f"ExecuTorch cannot load {path}: {str(exc).strip().splitlines()[0]}") from exc
        if self._method is None:
            raise NseError(f"{path} has no forward method")
        meta = self._method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise NseError(f"{path} has {meta.num_inputs()} inputs and {meta.num_outputs()} outputs; expected 1, 1")
        self.input_shape = tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        self._threads = threads

    def _run_one(self, x: np.ndarray) -> np.ndarray:
        import torch

        return self._method.execute([torch.from_numpy(x)])[0].numpy().astype(np.float32)

    def _bind_timing_input(self) -> None:
        import torch

        self._x = [torch.from_numpy(self._timing_input())]

    def _invoke(self) -> None:
        self._method.execute(self._x)


class ExecuTorchRunner(Runner):
    """ExecuTorch's Python runtime (``executorch.runtime``), programs lowered to XNNPACK (an optional extra)."""

    name = "executorch"

    def __init__(self, *, threads: int) -> None:
        from nse_hw.export.pte import require_executorch

        require_executorch()
        super().__init__(threads=threads)

    @property
    def version(self) -> str:
        try:
            return version("executorch")
        except PackageNotFoundError:
            return "unknown"

    def load(self, path: str | Path) -> Session:
        return _EtSession(_existing(path), self.threads)


RUNNERS: dict[str, type[Runner]] = {r.name: r for r in (LiteRTRunner, OrtRunner, ExecuTorchRunner)}


def get_runner(name: str, *, threads: int, kernels: str = "xnnpack") -> Runner:
    """The runner called ``name`` (``litert``, ``onnxruntime`` or ``executorch``) with ``threads`` threads;
    ``kernels`` (LiteRT only): ``xnnpack`` or ``builtin``."""
    if name not in RUNNERS:
        raise NseError(f"unknown runtime {name!r}; known: {', '.join(sorted(RUNNERS))}")
    check_kernels(kernels, name)
    if name == "litert":
        return LiteRTRunner(threads=threads, kernels=kernels)
    return RUNNERS[name](threads=threads)


def summarize(times_ms: np.ndarray) -> dict[str, float | int]:
    """Median and spread of per-invoke times: ``ms`` (median), ``p10``, ``p90``, ``n``."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise NseError("no timings to summarise")
    p10, ms, p90 = np.percentile(t, [10, 50, 90])
    return {"ms": float(ms), "p10": float(p10), "p90": float(p90), "n": int(t.size)}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def host_description() -> dict[str, Any]:
    """What a latency table measured on this host must record about it."""
    from nse_hw.hostcpu import this_cpu

    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cpu_fingerprint": this_cpu(),  # what decides "same CPU" (nse_hw.hostcpu)
        "logical_cores": os.cpu_count(),
        "cpus_allowed": allowed,  # taskset pinning of this process
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
