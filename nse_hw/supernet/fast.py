"""Exact speed-ups for training at small proxy resolutions.

At 32 px the last stages are 2x2 or 1x1: a k x k (dilated) kernel there mostly reads zero padding, and CPU
depthwise kernels are slow for such shapes. :func:`crop_dead_taps` makes every conv skip the taps that can only
ever read padding at its (fixed) input size: outputs and the gradients of the taps that matter are unchanged, the
skipped taps get zero gradient (as they would anyway), and the state dict keeps the full kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CroppedConv2d(nn.Conv2d):
    """A Conv2d that uses the central ``kernel - 2 * crop`` taps when its input has the recorded size."""

    crop: tuple[int, int]
    input_hw: tuple[int, int]

    def forward(self, x: Tensor) -> Tensor:
        (ch, cw), (dh, dw) = self.crop, self.dilation
        if tuple(x.shape[-2:]) != self.input_hw:
            return super().forward(x)
        kh, kw = self.kernel_size
        w = self.weight[:, :, ch: kh - ch, cw: kw - cw]
        pad = (self.padding[0] - ch * dh, self.padding[1] - cw * dw)  # type: ignore[index]
        return F.conv2d(x, w, self.bias, self.stride, pad, self.dilation, self.groups)


def _dead(k: int, d: int, pad: int, size: int) -> int:
    """Taps on each side whose offset from the centre exceeds the input: they only ever read padding."""
    if pad != d * (k - 1) // 2:  # not 'same' padding: leave it alone
        return 0
    half = (k - 1) // 2
    live = min(half, (size - 1) // d)
    return half - live


@torch.no_grad()
def crop_dead_taps(net: nn.Module, run: Callable[[], object]) -> int:
    """Record every Conv2d's input size during ``run()`` (a forward that reaches all convs), then crop the dead
    taps. Returns how many convs were cropped."""
    sizes: dict[nn.Conv2d, tuple[int, int]] = {}

    def record(m: nn.Module, args: tuple[Tensor, ...]) -> None:
        sizes.setdefault(m, tuple(args[0].shape[-2:]))  # type: ignore[arg-type]

    hooks = [m.register_forward_pre_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    n = 0
    for m, hw in sizes.items():
        crop = tuple(_dead(k, d, p, s) for k, d, p, s in zip(m.kernel_size, m.dilation, m.padding, hw, strict=True))
        if any(crop) and type(m) is nn.Conv2d:
            m.__class__ = CroppedConv2d
            m.crop, m.input_hw = crop, hw  # type: ignore[assignment]
            n += 1
    return n
