"""Where a conversion fails: the top-level part of a network (stem, ``layers.i``, head, classifier) that the
converter cannot lower, so an export error names the layer as well as the op."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nse_hw.errors import NseError


def _parts(model: nn.Module, sample_nchw: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Top-level parts of a network in forward order (stem, layers.i, head, classifier) with their input shapes."""
    shapes: dict[str, tuple[int, ...]] = {}
    parts = [(n, m) for n, m in model.named_modules() if n.count(".") == (1 if n.startswith("layers.") else 0)
             and n not in ("", "layers")]

    def record(name: str) -> Any:
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:  # None: leave the inputs alone
            shapes.setdefault(name, tuple(args[0].shape))
        return hook

    hooks = [m.register_forward_pre_hook(record(n)) for n, m in parts]
    try:
        with torch.no_grad():
            model.eval()(sample_nchw)
    finally:
        for h in hooks:
            h.remove()
    return [(n, m, shapes[n]) for n, m in parts if n in shapes]


def _exported_ops(module: nn.Module, shape: tuple[int, ...], *, decompose: bool) -> set[str]:
    """The call targets (e.g. aten.cummax.default) of a part's exported graph, optionally decomposed."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
            ep = torch.export.export(module.eval(), (torch.zeros(shape),))
            graph = ep.run_decompositions().graph if decompose else ep.graph
    except Exception:  # a part torch.export cannot take is found by the per-part conversion instead
        return set()
    return {str(n.target) for n in graph.nodes if n.op == "call_function"}


def locate_failure(model: nn.Module, sample_nchw: torch.Tensor, convert: Any, op: str | None = None) -> str | None:
    """Which top-level part of a network the converter cannot lower: the first whose graph holds ``op``
    (cheap: torch.export only; decomposed graphs second), else the first that fails to convert on its own."""
    parts = _parts(model, sample_nchw)
    hit = None
    for decompose in (False, True) if op else ():
        hit = next((p for p in parts if op in _exported_ops(p[1], p[2], decompose=decompose)), None)
        if hit:
            break
    if hit is None:
        with tempfile.TemporaryDirectory() as tmp:
            for part in parts:
                try:
                    convert(part[1], part[2], Path(tmp) / "part")
                except NseError:
                    hit = part
                    break
    return f"{hit[0]} ({getattr(hit[1], 'label', type(hit[1]).__name__)})" if hit else None
