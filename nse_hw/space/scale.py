"""Width multipliers and input resolutions: one network at another size, by the MobileNet width rule.

    make_divisible(v, 8)  ->  max(8, int(v + 4) // 8 * 8), plus 8 when that rounded down by more than 10%

(tf-slim ``_make_divisible``, used by MobileNetV2/V3 and the public latency figures of their README). Stem and
layer widths are ``make_divisible(c * width)``; the head keeps its width below x1 and is scaled above x1
(MobileNetV2's rule, ``head="mobilenet"``), or always scaled (``"scale"``), or never (``"keep"``).
"""

from __future__ import annotations

import dataclasses

from nse_hw.space.arch import Arch, LayerSpec, make_divisible, scale_mid

HEAD_RULES = ("mobilenet", "scale", "keep")
WIDTH_RANGE = (0.05, 4.0)


def _width(chs: int, width: float, divisor: int, where: str) -> int:
    if chs * width < 0.5:
        raise ValueError(f"width x{width:g} makes the {where} width {chs} round to 0 channels")
    return make_divisible(chs * width, divisor)


def scale_arch(arch: Arch, *, resolution: int | None = None, width: float = 1.0, divisor: int = 8,
               head: str = "mobilenet", classes: int | None = None) -> Arch:
    """``arch`` at input ``resolution`` x ``resolution`` and width multiplier ``width`` (same layer sequence).

    An input smaller than the network's total stride is refused by :class:`Arch` itself.
    """
    lo, hi = WIDTH_RANGE
    if not lo <= width <= hi:
        raise ValueError(f"width multiplier {width:g} is outside {lo:g}..{hi:g}")
    if head not in HEAD_RULES:
        raise ValueError(f"unknown head rule {head!r} (one of {', '.join(HEAD_RULES)})")
    if resolution is not None and resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    res = (resolution, resolution) if resolution is not None else arch.input[:2]
    if width == 1.0:
        stem, layers, head_out, hidden = arch.stem_out, arch.layers, arch.head_out, arch.hidden
    else:
        stem = _width(arch.stem_out, width, divisor, "stem")
        layers = tuple(LayerSpec(scale_mid(s.ops, width, lambda m, w, i=i: _width(m, w, divisor, f"layer {i} middle")),
                                 _width(s.out, width, divisor, f"layer {i}"), s.stride)
                       for i, s in enumerate(arch.layers))
        scale_head = head == "scale" or (head == "mobilenet" and width > 1.0)
        head_out = _width(arch.head_out, width, divisor, "head") if scale_head else arch.head_out
        hidden = _width(arch.hidden, width, divisor, "classifier") if arch.hidden and scale_head else arch.hidden
    meta = {**arch.meta, "scaled": {"from_input": list(arch.input[:2]), "width": width, "divisor": divisor,
                                    "head": head}}
    return dataclasses.replace(arch, input=(res[0], res[1], arch.input[2]), classes=classes or arch.classes,
                               stem_out=stem, layers=tuple(layers), head_out=head_out, hidden=hidden, meta=meta)
