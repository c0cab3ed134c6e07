"""One builder per op, all with FBNet's signature ``(in_chs, out_chs, stride, **op_args) -> nn.Module``.

Activation is ReLU6 unless an op asks for hard-swish (``_hs``) or ReLU (``_re``), as in MobileNetV2/ProxylessNAS
(ReLU6), MobileNetV3 (both others) and MnasNet (ReLU).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from nse_hw.space.grammar import Op

Builder = Callable[..., nn.Module]


def act_module(act: str) -> nn.Module:
    """``relu6`` (the default), ``hs`` (hard-swish) or ``re`` (ReLU)."""
    return {"hs": nn.Hardswish, "re": nn.ReLU, "relu6": nn.ReLU6}[act]()


def _act(hs: bool, re: bool = False) -> nn.Module:
    return act_module("hs" if hs else "re" if re else "relu6")


def conv_bn(in_chs: int, out_chs: int, kernel: int | tuple[int, int], *, stride: int | tuple[int, int] = 1,
            dilation: int = 1, groups: int = 1, act: nn.Module | None = None) -> nn.Sequential:
    """Conv (no bias) + BN [+ act], 'same' padding for odd kernels."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    pad = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_chs, out_chs, (kh, kw), stride, pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_chs),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """MobileNetV3 squeeze-excite: global pool, 1x1 reduce (ReLU), 1x1 expand, hard-sigmoid gate."""

    def __init__(self, chs: int, *, reduction: int = 4) -> None:
        super().__init__()
        mid = max(8, chs // reduction)
        self.reduce = nn.Conv2d(chs, mid, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(mid, chs, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(s))))


def mbconv(in_chs: int, out_chs: int, stride: int, *, k: int, e: int, d: int = 1, se: bool = False,
           hs: bool = False, m: int = 0, re: bool = False) -> nn.Module:
    """Inverted residual without the residual (the layer adds identity): [1x1 expand], kxk dw, [SE], 1x1 project.

    ``m``: absolute middle channels (always with the expand conv); else ``in_chs * e`` (expand conv iff e != 1)."""
    mid = m or in_chs * e
    layers: list[nn.Module] = []
    if e != 1 or m:
        layers.append(conv_bn(in_chs, mid, 1, act=_act(hs, re)))
    layers.append(conv_bn(mid, mid, k, stride=stride, dilation=d, groups=mid, act=_act(hs, re)))
    if se:
        layers.append(SqueezeExcite(mid))
    layers.append(conv_bn(mid, out_chs, 1))
    return nn.Sequential(*layers)


def rec(in_chs: int, out_chs: int, stride: int, *, k: int, e: int) -> nn.Module:
    """NSE's factorised op: [1x1 expand], 1xk full conv, kx1 full conv, 1x1 project (stride split over both)."""
    mid = in_chs * e
    layers: list[nn.Module] = []
    if e != 1:
        layers.append(conv_bn(in_chs, mid, 1, act=nn.ReLU6()))
    layers += [
        conv_bn(mid, mid, (1, k), stride=(1, stride), act=nn.ReLU6()),
        conv_bn(mid, mid, (k, 1), stride=(stride, 1), act=nn.ReLU6()),
        conv_bn(mid, out_chs, 1),
    ]
    return nn.Sequential(*layers)


def conv(in_chs: int, out_chs: int, stride: int, *, k: int, hs: bool = False, re: bool = False) -> nn.Module:
    """Plain conv + BN + act (the stem; ReLU6 unless hs / re)."""
    return conv_bn(in_chs, out_chs, k, stride=stride, act=_act(hs, re))


BUILDERS: dict[str, Builder] = {"mb": mbconv, "rec": rec, "conv": conv}


def op_args(op: Op) -> dict[str, int | bool]:
    """The keyword arguments of ``op``'s builder."""
    if op.kind == "mb":
        extra = {"m": op.m} if op.m else {}
        return {"k": op.k, "e": op.e, "d": op.d, "se": op.se, "hs": op.hs, **extra,
                **({"re": True} if op.re else {})}
    if op.kind == "rec":
        return {"k": op.k, "e": op.e}
    return {"k": op.k, **({"hs": True} if op.hs else {}), **({"re": True} if op.re else {})}


def build_op(op: Op, in_chs: int, out_chs: int, stride: int) -> nn.Module:
    return BUILDERS[op.kind](in_chs, out_chs, stride, **op_args(op))
