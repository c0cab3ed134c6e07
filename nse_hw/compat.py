"""The one place torchvision is imported.

torchvision 0.28.0 (the build that pairs with torch 2.13.0) is a CUDA wheel; with the CPU torch its import fails
with "operator torchvision::nms does not exist". Declaring the two C++ op schemas it registers fake kernels for
lets models, transforms and datasets import (``ops.nms`` and ``torchvision.io`` stay unavailable). Applied only
when the ops are missing, so a matching CPU/CUDA pair is left alone.
"""

from __future__ import annotations

from types import ModuleType

import torch

_LIB: torch.library.Library | None = None


def import_torchvision() -> ModuleType:
    global _LIB
    if _LIB is None and not hasattr(torch.ops.torchvision, "nms"):
        _LIB = torch.library.Library("torchvision", "FRAGMENT")
        _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision
