"""Latency-table keys: one text form per measurable unit of a network.

    mb_k5_e6|in=56x56x24|out=40|s=2     an op (also the stem: conv_k3|in=224x224x3|out=32|s=2)
    head|in=7x7x320|out=1280            1x1 conv + BN + ReLU6 to the head width (head_hs: hard-swish, head_re:
                                        ReLU; the stem says it in its op token, conv_k3_hs)
    classifier|in=7x7x1280|out=1000     global pool + linear (a classifier with a hidden linear layer, as in
                                        MobileNetV3, is two keys: classifier|in=7x7x960|out=1280 and
                                        classifier|in=1x1x1280|out=1000, the pool over 1x1 being a copy)
    add|in=56x56x24                     one element-wise add joining two terms of a layer (a table whose
                                        ``meta.residual_add`` is "in-op" timed identity-shape ops with their
                                        residual add: its identity layers need no add key)
    scale|in=56x56x24                   the 1/n multiply that turns a layer's sum of terms into their mean
                                        (only in archs with the default join "mean"; "sum" has no scale)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nse_hw.space.arch import Arch, Shape, has_identity
from nse_hw.space.grammar import Op, format_op, parse_op
from nse_hw.space.searchspace import SearchSpace

_SHAPE = r"([0-9]+)x([0-9]+)x([0-9]+)"
_OP_KEY = re.compile(rf"([a-z0-9_]+)\|in={_SHAPE}\|out=([0-9]+)\|s=([0-9]+)")
_UNIT_KEY = re.compile(rf"(head(?:_hs|_re)?|classifier)\|in={_SHAPE}\|out=([0-9]+)")
_JOIN_KEY = re.compile(rf"(add|scale)\|in={_SHAPE}")


def _shape(s: Shape) -> str:
    return f"{s[0]}x{s[1]}x{s[2]}"


def op_key(op: Op, shape: Shape, out: int, stride: int) -> str:
    return f"{format_op(op)}|in={_shape(shape)}|out={out}|s={stride}"


def head_key(shape: Shape, out: int, act: str = "relu6") -> str:
    return f"head{'' if act == 'relu6' else '_' + act}|in={_shape(shape)}|out={out}"


def classifier_key(shape: Shape, classes: int) -> str:
    return f"classifier|in={_shape(shape)}|out={classes}"


def join_key(kind: str, shape: Shape) -> str:
    return f"{kind}|in={_shape(shape)}"


@dataclass(frozen=True)
class KeySpec:
    """A parsed key: what to build and at which shape. ``op`` is set for op keys only."""

    kind: str  # "op", "head", "classifier", "add", "scale"
    shape: Shape
    out: int
    stride: int = 1
    op: Op | None = None
    act: str = "relu6"  # the head's activation (op keys carry theirs in ``op``)


def parse_key(key: str) -> KeySpec:
    if m := _OP_KEY.fullmatch(key):
        tok, h, w, c, out, s = m.groups()
        return KeySpec("op", (int(h), int(w), int(c)), int(out), int(s), parse_op(tok))
    if m := _UNIT_KEY.fullmatch(key):
        kind, h, w, c, out = m.groups()
        kind, _, act = kind.partition("_")
        return KeySpec(kind, (int(h), int(w), int(c)), int(out), act=act or "relu6")
    if m := _JOIN_KEY.fullmatch(key):
        kind, h, w, c = m.groups()
        return KeySpec(kind, (int(h), int(w), int(c)), int(c))
    raise ValueError(f"malformed latency key {key!r}")


def out_shape(shape: Shape, out: int, stride: int) -> Shape:
    return (-(-shape[0] // stride), -(-shape[1] // stride), out)


def join_counts(n_ops: int, identity: bool, join: str = "mean", *, adds_in_ops: bool = False) -> tuple[int, int]:
    """(adds, scales) of a layer with ``n_ops`` branches: n terms need n-1 adds, and the mean one 1/n multiply.

    ``adds_in_ops``: the table's ops at identity shapes were timed with their residual add (OFA's ``idskip:1``
    blocks), so each of the n branches already carries one add: all an identity layer has (n-1 joins and the
    residual one)."""
    terms = n_ops + int(identity)
    adds = 0 if adds_in_ops and identity else max(terms - 1, 0)
    return adds, int(terms > 1 and join == "mean")


@dataclass(frozen=True)
class Component:
    """One line of a latency breakdown: a part of the network and the keys (with counts) it costs."""

    name: str
    keys: tuple[tuple[str, int], ...]


def arch_components(arch: Arch, *, adds_in_ops: bool = False) -> list[Component]:
    """Every unit of ``arch`` as table keys, in network order (``adds_in_ops``: see :func:`join_counts`)."""
    shapes = arch.layer_inputs()
    comps = [Component("stem", ((op_key(arch.stem, arch.input, arch.stem_out, arch.stem_stride), 1),))]
    for i, (spec, shape) in enumerate(zip(arch.layers, shapes, strict=False)):
        keys = [(op_key(op, shape, spec.out, spec.stride), 1) for op in spec.ops]
        adds, scales = join_counts(len(spec.ops), has_identity(shape[2], spec), arch.join, adds_in_ops=adds_in_ops)
        oshape = out_shape(shape, spec.out, spec.stride)
        keys += [(join_key("add", oshape), adds)] if adds else []
        keys += [(join_key("scale", oshape), scales)] if scales else []
        comps.append(Component(f"layer{i}", tuple(keys)))
    head_in = shapes[-1]
    comps.append(Component("head", ((head_key(head_in, arch.head_out, arch.head_act), 1),)))
    comps.append(Component("classifier", tuple((k, 1) for k in classifier_keys(arch))))
    return comps


def classifier_keys(arch: Arch) -> list[str]:
    """Pool + linear; with a hidden layer, pool + linear to it, then a linear on 1x1 (see the module doc)."""
    h, w, _ = arch.layer_inputs()[-1]
    if not arch.hidden:
        return [classifier_key((h, w, arch.head_out), arch.classes)]
    return [classifier_key((h, w, arch.head_out), arch.hidden), classifier_key((1, 1, arch.hidden), arch.classes)]


def space_keys(space: SearchSpace, *, adds_in_ops: bool = False) -> list[str]:
    """Every key any arch of ``space`` can need (positions have fixed input shapes), in network order."""
    base = space.arch([() if p.skippable else (space.pool[0],) for p in space.positions if p.searchable])
    shapes = base.layer_inputs()
    keys = [op_key(space.stem, space.input, space.stem_out, space.stem_stride)]
    for pos, shape in zip(space.positions, shapes, strict=False):
        ops = space.pool if pos.searchable else pos.fixed
        keys += [op_key(op, shape, pos.out, pos.stride) for op in ops]
        oshape = out_shape(shape, pos.out, pos.stride)
        n_ops = 2 if pos.searchable else len(pos.fixed)  # searchable layers may have two or more branches
        adds, scales = join_counts(n_ops, pos.stride == 1 and shape[2] == pos.out, adds_in_ops=adds_in_ops)
        keys += ([join_key("add", oshape)] if adds else []) + ([join_key("scale", oshape)] if scales else [])
    keys.append(head_key(shapes[-1], space.head_out))
    keys.append(classifier_key(shapes[-1][:2] + (space.head_out,), space.classes))
    return list(dict.fromkeys(keys))
