"""Numerical verification of an exported file against the PyTorch network it came from, on the same inputs.

The runtime is handed in as a callable (``run(x) -> logits``), so this module needs no runtime of its own
(profilers reach the runtimes; export only takes plain networks and arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

# A float32 export passes when its logits are this close to PyTorch's and its top-1 agrees this often.
FLOAT_MAX_ABS_DIFF = 1e-3
FLOAT_MIN_AGREEMENT = 0.995


@dataclass(frozen=True)
class Comparison:
    images: int
    inputs: str  # "test images" or "random normal (no test data)"
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # share of images where the file's and PyTorch's argmax are the same
    top1_file: float | None  # against the labels (None without labels)
    top1_torch: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def passes_float(self) -> bool:
        return self.max_abs_diff <= FLOAT_MAX_ABS_DIFF and self.top1_agreement >= FLOAT_MIN_AGREEMENT


@torch.no_grad()
def torch_logits(model: nn.Module, x_nchw: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """The reference: the network in eval mode (its train/eval mode is given back as it was)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x_nchw[i:i + batch_size]) for i in range(0, len(x_nchw), batch_size)]).numpy()
    finally:
        model.train(was_training)


def compare(reference: np.ndarray, logits: np.ndarray, labels: np.ndarray | None, *,
            inputs: str) -> Comparison:
    """Compare a runtime's logits with the PyTorch reference (and both with the labels, if any)."""
    if reference.shape != logits.shape:
        raise ValueError(f"runtime output shape {logits.shape} differs from PyTorch's {reference.shape}")
    diff = np.abs(reference.astype(np.float64) - logits.astype(np.float64))
    ref_top, top = reference.argmax(1), logits.argmax(1)
    acc = (lambda pred: float((pred == labels).mean())) if labels is not None else (lambda pred: None)
    return Comparison(images=len(reference), inputs=inputs, max_abs_diff=float(diff.max()),
                      mean_abs_diff=float(diff.mean()), top1_agreement=float((ref_top == top).mean()),
                      top1_file=acc(top), top1_torch=acc(ref_top))


def verify(model: nn.Module, run: Callable[[np.ndarray], np.ndarray], x_nchw: torch.Tensor,
           labels: np.ndarray | None, *, layout: str, inputs: str, reference: np.ndarray | None = None) -> Comparison:
    """Run the file (through ``run``, in its ``layout``: 'NHWC' or 'NCHW') and PyTorch on the same images.

    ``reference``: PyTorch's logits on ``x_nchw`` when the caller has them already (several files, one model).
    """
    if layout not in ("NHWC", "NCHW"):
        raise ValueError(f"layout must be NHWC or NCHW, got {layout!r}")
    x = x_nchw.permute(0, 2, 3, 1).contiguous() if layout == "NHWC" else x_nchw
    ref = torch_logits(model, x_nchw) if reference is None else reference
    return compare(ref, run(x.numpy()), labels, inputs=inputs)
