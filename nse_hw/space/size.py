"""What a network will cost before it is built: parameters, activations, multiply-adds, and training memory.

Pure arithmetic that mirrors ``nse_hw.blocks`` layer for layer (the tests check the parameter count against the
built modules and the papers' figures: MobileNetV2 3.50 M params and 300 M MACs), so that an arch with 10,000
layers or a huge input is refused in a millisecond, with the figure it would need, instead of swapping for
minutes and dying.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nse_hw.space.arch import Arch, LayerSpec, adapt_arch, has_identity, out_size
from nse_hw.space.grammar import Layer, Op
from nse_hw.space.searchspace import SearchSpace

FLOAT_BYTES = 4
# Per parameter while training: the weight, its gradient and up to two optimiser states (Adam; SGD momentum: 1).
PARAM_COPIES = 4


@dataclass(frozen=True)
class NetSize:
    """``activations``: floats per image that a training step keeps for backward (every conv, BN, activation,
    join output); ``macs``: multiply-adds of one forward pass of one image."""

    params: int = 0
    activations: int = 0
    macs: int = 0

    def __add__(self, other: NetSize) -> NetSize:
        return NetSize(self.params + other.params, self.activations + other.activations, self.macs + other.macs)

    def training_bytes(self, batch: int) -> int:
        return FLOAT_BYTES * (PARAM_COPIES * self.params + batch * self.activations)


def _conv_bn(h: int, w: int, cin: int, cout: int, kh: int, kw: int, sh: int, sw: int, *, groups: int = 1,
             act: bool = True) -> tuple[NetSize, int, int]:
    """conv (no bias) + BN [+ act] with 'same' padding: the size and the output's H, W."""
    oh, ow = out_size(h, sh), out_size(w, sw)
    n_out = oh * ow * cout
    size = NetSize(cout * (cin // groups) * kh * kw + 2 * cout, n_out * (3 if act else 2),
                   n_out * (cin // groups) * kh * kw)
    return size, oh, ow


def op_size(op: Op, h: int, w: int, cin: int, cout: int, stride: int) -> NetSize:
    """One branch (``nse_hw.blocks.ops``: mbconv, rec or the conv stem) on an H x W x cin input."""
    if op.kind == "conv":
        return _conv_bn(h, w, cin, cout, op.k, op.k, stride, stride)[0]
    mid, total = op.mid(cin), NetSize()
    if op.expands:
        total += _conv_bn(h, w, cin, mid, 1, 1, 1, 1)[0]
    if op.kind == "mb":
        dw, oh, ow = _conv_bn(h, w, mid, mid, op.k, op.k, stride, stride, groups=mid)
        total += dw
        if op.se:  # pool, reduce (+bias, ReLU), expand (+bias), hard-sigmoid gate, x * gate
            red = max(8, mid // 4)
            total += NetSize(2 * mid * red + red + mid, 2 * red + 3 * mid + oh * ow * mid, 2 * mid * red)
    else:
        row, h1, ow = _conv_bn(h, w, mid, mid, 1, op.k, 1, stride)
        col, oh, ow = _conv_bn(h1, ow, mid, mid, op.k, 1, stride, 1)
        total += row + col
    return total + _conv_bn(oh, ow, mid, cout, 1, 1, 1, 1, act=False)[0]


def layer_size(ops: Layer, h: int, w: int, cin: int, cout: int, stride: int, join: str = "mean") -> NetSize:
    """A layer: its branches, then the sums and (mean) the 1/n scale (identity included where it applies)."""
    total = NetSize()
    for op in ops:
        total += op_size(op, h, w, cin, cout, stride)
    terms = len(ops) + (1 if has_identity(cin, LayerSpec(ops, cout, stride)) else 0)
    joins = (terms if join == "mean" else terms - 1) if terms > 1 else 0  # terms - 1 sums (and one scale)
    return total + NetSize(0, joins * out_size(h, stride) * out_size(w, stride) * cout, 0)


def estimate(arch: Arch) -> NetSize:
    """The size of ``nse_hw.blocks.build_network(arch)`` (one image: NCHW input of arch.input)."""
    h, w, c = arch.input
    total = NetSize(0, h * w * c, 0) + op_size(arch.stem, h, w, c, arch.stem_out, arch.stem_stride)
    for (lh, lw, chs), spec in zip(arch.layer_inputs(), arch.layers, strict=False):
        total += layer_size(spec.ops, lh, lw, chs, spec.out, spec.stride, arch.join)
    hh, hw, chs = arch.layer_inputs()[-1]
    total += _conv_bn(hh, hw, chs, arch.head_out, 1, 1, 1, 1)[0]
    feats = arch.head_out
    if arch.hidden:  # pool -> linear (+bias) -> act
        total += NetSize(feats * arch.hidden + arch.hidden, feats + 2 * arch.hidden, feats * arch.hidden)
        feats = arch.hidden
    return total + NetSize(feats * arch.classes + arch.classes, (0 if arch.hidden else feats) + arch.classes,
                           feats * arch.classes)


def widest_choices(arch: Arch, searchable: list[int], pool: tuple[Op, ...], k: int) -> list[Layer]:
    """Per searchable layer of ``arch``, the ``k`` pool ops that cost the most there: the largest supernet a
    search with subspaces of size ``k`` can hold at once."""
    inputs, choices = arch.layer_inputs(), []
    for j in searchable:
        (h, w, c), spec = inputs[j], arch.layers[j]
        cost = {op: op_size(op, h, w, c, spec.out, spec.stride) for op in pool}
        ranked = sorted(pool, key=lambda op: (cost[op].activations + cost[op].params, op), reverse=True)
        choices.append(tuple(sorted(ranked[:k])))
    return choices


def largest_supernet(space: SearchSpace, *, resolution: int, channels: int, classes: int, width_mult: float,
                     k: int) -> Arch:
    """The proxy view of ``space`` with the ``k`` costliest pool ops in every searchable layer (see
    :func:`widest_choices`): what a search's supernet may hold at most."""
    try:
        skel = adapt_arch(space.arch([(space.pool[0],)] * len(space.searchable)), resolution=resolution,
                          channels=channels, classes=classes, width_mult=width_mult)
    except ValueError as exc:
        raise ValueError(f"proxy of space {space.name} at {resolution} px: {exc}") from None
    choices = iter(widest_choices(skel, space.searchable, space.pool, k))
    layers = [LayerSpec(next(choices), s.out, s.stride) if p.searchable else s
              for p, s in zip(space.positions, skel.layers, strict=True)]
    return skel.with_layers(layers)


def host_memory() -> int:
    """Bytes of memory this process may use: physical RAM, or the cgroup limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        return min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        return total


def device_memory(device: Any) -> int:
    """Memory of the device a network trains on: the GPU's for CUDA (torch imported only then), else the host's."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(device).total_memory)
    return host_memory()


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def check_fits(size: NetSize, *, batch: int, what: str, limit: int | None = None) -> None:
    """Refuse (ValueError with the figure) a network whose training step at ``batch`` would not fit ``limit``
    bytes (default: this host's memory)."""
    limit = host_memory() if limit is None else limit
    need = size.training_bytes(batch)
    if need > limit:
        raise ValueError(f"{what} needs about {gib(need)} to train at batch {batch} ({size.params / 1e6:.1f} M "
                         f"params, {size.activations / 1e6:.1f} M activations per image); the limit is "
                         f"{gib(limit)}: use a smaller network, input, width or batch")

