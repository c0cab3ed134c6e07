"""PyTorch -> ``.onnx`` with the torch.onnx dynamo exporter, checked with ``onnx.checker``.

Unlike the ``.tflite`` files, the ONNX model keeps PyTorch's NCHW layout: its one input is
``input`` (N, C, H, W) float32 and its output(s) ``output``/``output_<i>`` are as PyTorch returns
them. ONNX Runtime on the host (x86, NCHW-native kernels) is its consumer, so no layout wrapper.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from nse_hw.atomic import atomic_write
from nse_hw.errors import NseError

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the dynamo exporter's native opset; >= 17 has LayerNormalization etc.


def export_onnx(
    model: nn.Module,
    input_shape_nchw: tuple[int, int, int, int],
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``model`` (eval mode, static shape ``input_shape_nchw``) to a checked ``.onnx`` at ``path``."""
    import onnx

    shape = tuple(input_shape_nchw)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise NseError(f"input shape must be 4 positive ints (N, C, H, W), got {shape}")
    if opset < 17:
        raise NseError(f"ONNX opset must be >= 17, got {opset}")
    sample = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            y = model(sample)
        n_out = len(y) if isinstance(y, (tuple, list)) else 1
        names = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
            program = torch.onnx.export(model, (sample,), dynamo=True, opset_version=opset,
                                        input_names=["input"], output_names=names, verbose=False)
        if program is None:  # only the legacy exporter returns None
            raise RuntimeError("torch.onnx.export returned no program")
        onnx.checker.check_model(program.model_proto, full_check=True)
    except Exception as exc:
        first = next((s for s in str(exc).splitlines() if s.strip()), "")
        raise NseError(f"ONNX export of {type(model).__name__} failed: {type(exc).__name__}: {first}") from exc
    finally:
        model.train(was_training)
    # One self-contained file: blocks and mobile nets are far below protobuf's 2 GB limit.
    out = atomic_write(path, lambda tmp: onnx.save_model(program.model_proto, str(tmp)))
    log.info("wrote %s (opset %d, input NCHW %s, %.1f s)", out.name, opset, shape, time.perf_counter() - start)
    return out

