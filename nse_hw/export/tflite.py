"""PyTorch (NCHW, float32) -> ``.tflite`` with litert-torch, float32 or full-integer int8.

The deployed model takes NHWC input (what a phone camera pipeline and TFLite kernels use):
``litert_torch.to_channel_last_io`` wraps the network so the converter can fold the layout
transposes away instead of leaving NCHW<->NHWC TRANSPOSE ops in the graph. A 4-D output is
NHWC as well; a 2-D (logits) output is unchanged.

int8 uses PT2E post-training static quantisation (torchao's ``prepare_pt2e``/``convert_pt2e``
with litert-torch's ``PT2EQuantizer``): int8 weights (per-channel) and activations, and int8
model input/output tensors whose scale/zero-point are in the tensor details (the host runner
quantises and dequantises for you).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from nse_hw.atomic import atomic_write
from nse_hw.errors import NseError
from nse_hw.export._native_stderr import native_stderr_to_log

log = logging.getLogger(__name__)

_OP_RE = re.compile(r"target=(?:torch\.ops\.)?([\w.]+)")


def _litert() -> ModuleType:
    """Import litert-torch lazily (it takes seconds) and without its import-time noise."""
    # Hides the C++ converter's INFO lines (op counts, PjRt devices); the user's setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    noisy = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in noisy]
    for lg in noisy:  # "Failed to load _C_cutlass_90a.so" (CUDA kernels) and a deprecation notice
        lg.setLevel(logging.ERROR)
    try:
        with native_stderr_to_log(log, "litert-torch import"):  # TF port.cc's oneDNN notice
            import litert_torch
    finally:
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)
    return litert_torch


@contextlib.contextmanager
def _quiet_conversion(litert: ModuleType) -> Iterator[None]:
    """Turn off litert-torch's rich progress lines (unless we log at DEBUG) and pytree deprecations."""
    shown = litert.config.show_progress
    litert.config.show_progress = log.isEnabledFor(logging.DEBUG)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
            yield
    finally:
        litert.config.show_progress = shown


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Convert in eval mode (BN running stats, no dropout); give the caller's model back as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _check_nhwc(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise NseError(f"input shape must be 4 positive ints (N, H, W, C), got {tuple(shape)}")
    return (shape[0], shape[1], shape[2], shape[3])


def _sample_nhwc(shape: tuple[int, int, int, int]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _channel_last(litert: ModuleType, model: nn.Module, sample_nhwc: torch.Tensor) -> nn.Module:
    """Wrap ``model`` to take NHWC input and give NHWC for each of its 4-D outputs."""
    with torch.no_grad():
        out = model(sample_nhwc.permute(0, 3, 1, 2))
    outs = out if isinstance(out, (tuple, list)) else [out]
    four_d = [i for i, o in enumerate(outs) if torch.is_tensor(o) and o.ndim == 4]
    return litert.to_channel_last_io(model, args=[0], outputs=four_d).eval()


def _failure(what: str, exc: BaseException) -> NseError:
    """One line: what failed, the aten op if torch.export/litert named it, the first line of the cause."""
    texts = [str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None]
    op = next((m.group(1) for t in texts if (m := _OP_RE.search(t))), None)
    first = next((line.strip() for line in texts[0].splitlines() if line.strip()), type(exc).__name__)
    at = f" at op {op}" if op else ""
    return NseError(f"{what} failed{at}: {type(exc).__name__}: {first}")


def _write(edge_model: object, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: edge_model.export(str(tmp)))  # type: ignore[attr-defined]


def export_tflite(model: nn.Module, input_shape_nhwc: tuple[int, int, int, int], path: str | Path) -> Path:
    """Convert a float32 NCHW module to a float32 ``.tflite`` at ``path`` whose input is NHWC."""
    shape = _check_nhwc(input_shape_nhwc)
    litert = _litert()
    sample = _sample_nhwc(shape)
    start = time.perf_counter()
    with _eval_mode(model), _quiet_conversion(litert):
        try:
            edge = litert.convert(_channel_last(litert, model, sample), (sample,))
        except Exception as exc:  # the converter raises anything from AssertionError to JAX errors
            raise _failure(f"TFLite conversion of {type(model).__name__}", exc) from exc
        out = _write(edge, path)
    log.info("wrote %s (float32, input NHWC %s, %.1f s)", out.name, shape, time.perf_counter() - start)
    return out


def _calibration_batches(
    calibration: Iterable[np.ndarray], shape: tuple[int, int, int, int]
) -> Iterator[torch.Tensor]:
    """Split NHWC float arrays of any batch size into tensors of the model's batch size."""
    batch = shape[0]
    for i, arr in enumerate(calibration):
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[1:] != shape[1:] or arr.shape[0] % batch:
            raise NseError(f"calibration array {i} has shape {arr.shape}; expected (k*{batch}, "
                           f"{shape[1]}, {shape[2]}, {shape[3]}) NHWC")
        for j in range(0, arr.shape[0], batch):
            yield torch.from_numpy(np.ascontiguousarray(arr[j:j + batch]))


def export_tflite_int8(
    model: nn.Module,
    input_shape_nhwc: tuple[int, int, int, int],
    path: str | Path,
    calibration: Iterable[np.ndarray],
    *,
    per_channel: bool = True,
) -> Path:
    """Post-training full-integer int8 ``.tflite`` (NHWC input), calibrated on ``calibration``.

    ``calibration`` yields NHWC float32 arrays (same H, W, C as the model input; any multiple of
    its batch size) with the input statistics of deployment (normalised images, not noise).
    """
    shape = _check_nhwc(input_shape_nhwc)
    litert = _litert()
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    sample = _sample_nhwc(shape)
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=per_channel))
    start = time.perf_counter()
    with _eval_mode(model), _quiet_conversion(litert):
        what = f"int8 TFLite conversion of {type(model).__name__}"
        try:
            graph = torch.export.export(_channel_last(litert, model, sample), (sample,)).module()
            observed = prepare_pt2e(graph, quantizer)
            n = 0
            with torch.no_grad():
                for x in _calibration_batches(calibration, shape):
                    observed(x)
                    n += 1
        except NseError:
            raise
        except Exception as exc:
            raise _failure(what, exc) from exc
        if n == 0:
            raise NseError("int8 export needs calibration data; the calibration set is empty")
        try:
            quantized = move_exported_model_to_eval(convert_pt2e(observed, fold_quantize=False))
            # Exported graphs refuse .eval(); litert-torch only reads the flag (to warn), BN is eval already.
            nn.Module.train(quantized, False)
            edge = litert.convert(quantized, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
        except Exception as exc:
            raise _failure(what, exc) from exc
        out = _write(edge, path)
    log.info("wrote %s (int8, %d calibration batches, input NHWC %s, %.1f s)", out.name, n, shape,
             time.perf_counter() - start)
    return out
