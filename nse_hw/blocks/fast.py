"""Speed-ups for training at small proxy resolutions on CPU, recorded per conv for its fixed input size (used by the
supernet, the stand-alone scores of a search and the retrain).

At 32-48 px the last stages run on 6x6 to 1x1 maps, where CPU convolutions waste most of their time:

- A k x k (dilated) kernel there mostly reads zero padding. :func:`crop_dead_taps` makes such a conv skip the
  taps that can only ever read padding: outputs and the gradients of the taps that matter are unchanged (exact),
  the skipped taps get zero gradient (as they would anyway), and the state dict keeps the full kernels.
- oneDNN's depthwise backward leaves its fast kernels when the kernel reaches beyond the map or is dilated (on
  an AMD EPYC Zen 3 core: weight gradient of 64 x 144 ch at 2x2, k5: 12 ms; input gradient of 64 x 24 ch at
  24x24, k3, stride 2, dilation 3: 25 ms, against 0.2 ms for its forward). With ``depthwise_grad`` those convs
  compute their gradients as one multiply-add per tap over the positions it pairs (:func:`depthwise_weight_grad`,
  :func:`depthwise_input_grad`: 0.35 and ~1 ms there), equal up to float rounding; the forward stays oneDNN's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _span(tap: int, *, stride: int, dilation: int, pad: int, size_in: int, size_out: int) -> tuple[int, int]:
    """The outputs ``o`` (first, last) whose input ``o * stride + tap * dilation - pad`` lies inside the map."""
    first = max(0, -(-(pad - tap * dilation) // stride))
    last = min(size_out - 1, (size_in - 1 + pad - tap * dilation) // stride)
    return first, last


Tap = tuple[int, int, tuple[slice, slice], tuple[slice, slice]]


def _taps(kernel: Sequence[int], x_hw: Sequence[int], out_hw: Sequence[int], stride: Sequence[int],
          padding: Sequence[int], dilation: Sequence[int]) -> Iterator[Tap]:
    """For each tap that reaches the map: (row, col, input slices, output slices) of the positions it pairs."""
    for i in range(kernel[0]):
        y0, y1 = _span(i, stride=stride[0], dilation=dilation[0], pad=padding[0], size_in=x_hw[0], size_out=out_hw[0])
        for j in range(kernel[1]):
            z0, z1 = _span(j, stride=stride[1], dilation=dilation[1], pad=padding[1], size_in=x_hw[1],
                           size_out=out_hw[1])
            if y1 < y0 or z1 < z0:
                continue
            r0, c0 = y0 * stride[0] + i * dilation[0] - padding[0], z0 * stride[1] + j * dilation[1] - padding[1]
            xs = (slice(r0, r0 + (y1 - y0) * stride[0] + 1, stride[0]), slice(c0, c0 + (z1 - z0) * stride[1] + 1,
                                                                               stride[1]))
            yield i, j, xs, (slice(y0, y1 + 1), slice(z0, z1 + 1))


def depthwise_weight_grad(x: Tensor, grad_out: Tensor, kernel: Sequence[int], *, stride: Sequence[int],
                          padding: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """The weight gradient ``(C, 1, kh, kw)`` of a depthwise conv of ``x`` ``(N, C, H, W)`` whose output gradient
    is ``grad_out``: for each tap, the sum over batch and the outputs it reaches of input times output gradient
    (taps that reach only padding get 0). Cheap where the map is small; any memory format."""
    out = x.new_zeros(x.shape[1], kernel[0], kernel[1])
    for i, j, xs, gs in _taps(kernel, x.shape[-2:], grad_out.shape[-2:], stride, padding, dilation):
        out[:, i, j] = (x[:, :, xs[0], xs[1]] * grad_out[:, :, gs[0], gs[1]]).sum((0, 2, 3))
    return out.unsqueeze(1)


def depthwise_input_grad(grad_out: Tensor, w: Tensor, like: Tensor, *, stride: Sequence[int],
                         padding: Sequence[int], dilation: Sequence[int]) -> Tensor:
    """The input gradient (shaped and laid out as ``like``) of a depthwise conv with weight ``w`` ``(C, 1, kh,
    kw)``: each tap adds its weight times the output gradient to the inputs it read."""
    gx = torch.zeros_like(like)
    for i, j, xs, gs in _taps(w.shape[-2:], like.shape[-2:], grad_out.shape[-2:], stride, padding, dilation):
        gx[:, :, xs[0], xs[1]] += grad_out[:, :, gs[0], gs[1]] * w[:, 0, i, j].view(1, -1, 1, 1)
    return gx


class _DepthwiseSmallMap(torch.autograd.Function):
    """A bias-free depthwise conv2d whose weight gradient is :func:`depthwise_weight_grad` and whose input
    gradient is :func:`depthwise_input_grad` (``own_input_grad``) or oneDNN's."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, stride: tuple[int, int], padding: tuple[int, int],  # type: ignore[override]
                dilation: tuple[int, int], own_input_grad: bool) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.geometry = stride, padding, dilation
        ctx.own_input_grad = own_input_grad
        return F.conv2d(x, w, None, stride, padding, dilation, x.shape[1])

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        gx = gw = None
        if ctx.needs_input_grad[0] and ctx.own_input_grad:
            gx = depthwise_input_grad(grad_out, w, x, stride=stride, padding=padding, dilation=dilation)
        elif ctx.needs_input_grad[0]:
            gx = torch.ops.aten.convolution_backward(grad_out, x, w, None, list(stride), list(padding),
                                                     list(dilation), False, [0, 0], x.shape[1],
                                                     [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            gw = depthwise_weight_grad(x, grad_out, w.shape[-2:], stride=stride, padding=padding, dilation=dilation)
        return gx, gw, None, None, None, None


class CroppedConv2d(nn.Conv2d):
    """A Conv2d that, on inputs of the recorded size, uses the central ``kernel - 2 * crop`` taps (dilation 1
    where one tap is left: the same products, and oneDNN's dilated backward is slow) and, where ``own_grads``
    says so and on CPU, :func:`depthwise_weight_grad` and :func:`depthwise_input_grad`."""

    crop: tuple[int, int]
    input_hw: tuple[int, int]
    own_grads: tuple[bool, bool]  # (weight, input)

    def forward(self, x: Tensor) -> Tensor:
        (ch, cw), (dh, dw) = self.crop, self.dilation
        if tuple(x.shape[-2:]) != self.input_hw:
            return super().forward(x)
        kh, kw = self.kernel_size
        w = self.weight[:, :, ch: kh - ch, cw: kw - cw]
        pad = (self.padding[0] - ch * dh, self.padding[1] - cw * dw)  # type: ignore[index]
        dil = (1 if kh - 2 * ch == 1 else dh, 1 if kw - 2 * cw == 1 else dw)
        if self.own_grads[0] and torch.is_grad_enabled() and x.device.type == "cpu":  # (measured on oneDNN only)
            return _DepthwiseSmallMap.apply(x, w, self.stride, pad, dil, self.own_grads[1])
        return F.conv2d(x, w, self.bias, self.stride, pad, dil, self.groups)


def _dead(k: int, d: int, pad: int, size: int) -> int:
    """Taps on each side whose offset from the centre exceeds the input: they only ever read padding."""
    if pad != d * (k - 1) // 2:  # not 'same' padding: leave it alone
        return 0
    half = (k - 1) // 2
    live = min(half, (size - 1) // d)
    return half - live


def depthwise_grads(conv: nn.Conv2d, kernel: tuple[int, int], hw: tuple[int, int]) -> tuple[bool, bool]:
    """Whether ``conv``, with its kernel cropped to ``kernel`` and on ``hw`` inputs, should compute its own (weight,
    input) gradients: a bias-free depthwise conv that is dilated or whose kernel reaches beyond its map (weight),
    dilated and strided (input). Measured on an AMD EPYC Zen 3 core: where oneDNN's kernels are slow, and not
    where they are not (stride 1, dilation 3 at 12x12: input gradient 0.8 ms, against 1.7 here)."""
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels and conv.bias is None
    if not depthwise:
        return False, False
    dilated = any(d > 1 and k > 1 for k, d in zip(kernel, conv.dilation, strict=True))
    reach = any(d * (k - 1) + 1 > s for k, d, s in zip(kernel, conv.dilation, hw, strict=True))
    return dilated or reach, dilated and max(conv.stride) > 1


@torch.no_grad()
def crop_dead_taps(net: nn.Module, run: Callable[[], object], *, depthwise_grad: bool = False) -> int:
    """Record every Conv2d's input size during ``run()`` (a forward that reaches all convs), then crop the dead
    taps; with ``depthwise_grad`` also switch the convs :func:`depthwise_grads` picks to
    their own gradients. Returns how many convs changed."""
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
        kernel = (m.kernel_size[0] - 2 * crop[0], m.kernel_size[1] - 2 * crop[1])
        own = depthwise_grads(m, kernel, hw) if depthwise_grad else (False, False)
        if (any(crop) or own[0]) and type(m) is nn.Conv2d:
            m.__class__ = CroppedConv2d
            m.crop, m.input_hw, m.own_grads = crop, hw, own  # type: ignore[assignment]
            n += 1
    return n


def for_cpu_training(net: nn.Module, *, channels: int, resolution: int) -> nn.Module:
    """``net`` (in place) as a CPU trainer wants it at a fixed ``resolution``: dead taps cropped and own depthwise
    gradients where :func:`depthwise_grads` picks them. Its state dict keeps its keys and shapes; its gradients are
    as close to float64's as the plain net's (measured). Channels-last would halve a step again at 32 px, but its
    float32 kernels round 2-12x worse through train-mode BN on 1x1 maps (a first step's gradient 1.2e-2 to 2.2e-2
    off float64's, against 1.9e-3 to 7.2e-3, three searched archs at width 0.5, batch 128:
    benchmarks/train-export/fast_convs.py), so it is left to the caller (the supernet uses it:
    ``proxy.channels_last``)."""
    crop_dead_taps(net, lambda: net.eval()(torch.zeros(2, channels, resolution, resolution)), depthwise_grad=True)
    return net.train()
