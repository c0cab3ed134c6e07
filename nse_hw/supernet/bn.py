"""BatchNorm recalibration: re-estimate running statistics for one path before scoring it.

A path's BN statistics seen during supernet training are a mixture over all paths; scoring a sampled
architecture first resets them and averages them over a few training batches on that path alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nse_hw.supernet.paths import Path


@torch.no_grad()
def recalibrate_bn(net: nn.Module, path: Path, batches: Iterable[Tensor]) -> int:
    """Reset every BN layer and re-estimate it (cumulative average) on ``batches`` forwarded on ``path``.

    Returns the number of batches used; leaves ``net`` in eval mode.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the recalibration batches
    net.train()
    n = 0
    try:
        for x in batches:
            net(x, path)
            n += 1
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        net.eval()
    return n
