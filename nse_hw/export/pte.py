"""PyTorch (NCHW, float32) -> ExecuTorch ``.pte`` lowered to the XNNPACK backend, float32 or int8.

ExecuTorch is an optional extra (``pip install -e '.[executorch]'``; benchmarks/deployment/RESULTS-deployment.md
gives the install cost). The program keeps PyTorch's NCHW layout (ExecuTorch's XNNPACK delegate converts internally).

int8 uses ExecuTorch's own flow: torchao's ``prepare_pt2e``/``convert_pt2e`` with ``XNNPACKQuantizer``'s
symmetric config (per-channel int8 weights, int8 activations); the program takes and gives float32, with the
quantise/dequantise at its edges inside the delegate.

Every op must be delegated to XNNPACK: an op left to the portable kernels would be timed (and shipped) on a
different, much slower path, so it is an error naming the op and the layer, never a silent fallback.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nse_hw.atomic import atomic_write
from nse_hw.errors import NseError

log = logging.getLogger(__name__)

INSTALL_HINT = ("ExecuTorch is not installed (an optional extra): .venv/bin/pip install -e '.[executorch]' "
                "(executorch==1.5.1)")
# Nodes of a lowered graph that are not ops: the delegate call and the tuple plumbing around it.
_PLUMBING = {"executorch_call_delegate", "getitem"}


def executorch_available() -> bool:
    return importlib.util.find_spec("executorch") is not None


def require_executorch() -> None:
    """One line naming how to install ExecuTorch when it is missing."""
    if not executorch_available():
        raise NseError(INSTALL_HINT)


def _check_nchw(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise NseError(f"input shape must be 4 positive ints (N, C, H, W), got {tuple(shape)}")
    return (shape[0], shape[1], shape[2], shape[3])


def _layer_of(node: Any) -> str:
    """The module path a graph node came from (``layers.3.branches.0``), or ``?``."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = [v[0] for v in stack.values() if isinstance(v, tuple) and v and v[0]]
    return paths[-1] if paths else "?"


def undelegated_ops(graph_module: Any) -> list[tuple[str, str]]:
    """(op, layer) of every call left outside the XNNPACK delegate in a lowered graph."""
    out = []
    for node in graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if name.split(".")[0] in _PLUMBING or "executorch_call_delegate" in name:
            continue
        text = str(node.target)  # EdgeOpOverload prints its schema too: keep "aten.cumsum.default"
        out.append(((m.group(0) if (m := re.search(r"\w+\.\w+\.\w+", text)) else text), _layer_of(node)))
    return out


def _lower(exported: Any, what: str) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    left = undelegated_ops(edge.exported_program().graph_module)
    if left:
        op, layer = left[0]
        more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
        raise NseError(f"{what}: op {op} in layer {layer} is not delegated to ExecuTorch's XNNPACK backend{more}; "
                       "it would run on the portable kernels, so it is refused")
    return bytes(edge.to_executorch().buffer)


def keepdim_means(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite global average pools ``mean((2, 3))`` of a 4-D tensor as ``mean((-1, -2), keepdim=True)`` and a
    view: the same values, in the only form XNNPACK's delegate takes (else ``aten.mean.dim`` stays outside)."""
    g = gm.graph
    for n in list(g.nodes):
        if n.op != "call_function" or n.target is not torch.ops.aten.mean.dim:
            continue
        x, dims = n.args[0], n.args[1]
        keep = n.args[2] if len(n.args) > 2 else n.kwargs.get("keepdim", False)
        out = n.meta.get("val")  # the pooled (N, C); the input's own meta is gone after convert_pt2e
        if keep or out is None or out.dim() != 2 or set(dims) not in ({2, 3}, {-1, -2}):
            continue
        with g.inserting_before(n):
            pooled = g.call_function(torch.ops.aten.mean.dim, (x, [-1, -2], True))
            flat = g.call_function(torch.ops.aten.view.default, (pooled, [int(d) for d in out.shape]))
        n.replace_all_uses_with(flat)
        g.erase_node(n)
    g.lint()
    gm.recompile()
    return gm


def _exported_for_xnnpack(model: nn.Module, sample: torch.Tensor) -> torch.fx.GraphModule:
    return keepdim_means(torch.export.export(model, (sample,)).module())


def _write(buffer: bytes, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer))


_OP_RE = re.compile(r"(?:target=|Operator )(?:torch\._ops\.|torch\.ops\.)?([\w.]+)")


def _failure(what: str, exc: BaseException) -> NseError:
    """One line: what failed, the aten op when the exporter named it (ship.convert_model then finds the layer)."""
    first = next((s.strip() for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
    at = f" at op {m.group(1)}" if (m := _OP_RE.search(str(exc))) else ""
    return NseError(f"{what} failed{at}: {type(exc).__name__}: {first}")


@contextmanager
def _exporting(model: nn.Module, what: str) -> Iterator[None]:
    """The model in eval mode for the export (its training flag restored after); a failure that is not already an
    NseError becomes one line naming the aten op (see :func:`_failure`)."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    except NseError:
        raise
    except Exception as exc:
        raise _failure(what, exc) from exc
    finally:
        model.train(was_training)


def export_pte(model: nn.Module, input_shape_nchw: tuple[int, int, int, int], path: str | Path) -> Path:
    """A float32 ExecuTorch program at ``path``, every op delegated to XNNPACK (NCHW input)."""
    require_executorch()
    shape = _check_nchw(input_shape_nchw)
    sample = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    what, start = f"ExecuTorch export of {type(model).__name__}", time.perf_counter()
    with _exporting(model, what):
        buffer = _lower(torch.export.export(_exported_for_xnnpack(model, sample), (sample,)), what)
    out = _write(buffer, path)
    log.info("wrote %s (float32, XNNPACK, input NCHW %s, %.1f s)", out.name, shape, time.perf_counter() - start)
    return out


def _nchw_batches(calibration: Iterable[np.ndarray], shape: tuple[int, int, int, int]) -> Iterable[torch.Tensor]:
    """NHWC float arrays (as export --int8 takes them) -> NCHW tensors of the model's batch size."""
    for i, arr in enumerate(calibration):
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[1:] != (shape[2], shape[3], shape[1]) or arr.shape[0] % shape[0]:
            raise NseError(f"calibration array {i} has shape {arr.shape}; expected (k*{shape[0]}, {shape[2]}, "
                           f"{shape[3]}, {shape[1]}) NHWC")
        x = torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
        yield from x.split(shape[0])


def export_pte_int8(model: nn.Module, input_shape_nchw: tuple[int, int, int, int], path: str | Path,
                    calibration: Iterable[np.ndarray]) -> Path:
    """An int8 ExecuTorch program (XNNPACKQuantizer, per-channel, PT2E) calibrated on NHWC ``calibration``."""
    require_executorch()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    shape = _check_nchw(input_shape_nchw)
    sample = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    what, start = f"int8 ExecuTorch export of {type(model).__name__}", time.perf_counter()
    with _exporting(model, what):
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        # the pool rewrite after quantisation: a view between the pool and the linear before it would leave
        # the linear's input unquantised (and the linear outside the delegate)
        observed = prepare_pt2e(torch.export.export(model, (sample,)).module(), quantizer)
        n = 0
        with torch.no_grad():
            for x in _nchw_batches(calibration, shape):
                observed(x)
                n += 1
        if n == 0:
            raise NseError("int8 export needs calibration data; the calibration set is empty")
        quantized = keepdim_means(convert_pt2e(observed))
        buffer = _lower(torch.export.export(quantized, (sample,)), what)
    out = _write(buffer, path)
    log.info("wrote %s (int8, XNNPACK, %d calibration batches, %.1f s)", out.name, n, time.perf_counter() - start)
    return out
