"""A neutral view of a model file's graph: what the ONNX and TFLite readers produce and the recogniser reads.

Only what pricing needs is kept: per node its role (``op``), the file's own op type and node name (for messages
and the per-node breakdown), the activation tensors it reads and writes, and the few attributes that make a
unit (channels, kernel, stride, dilation, groups). Constants (weights, biases, shapes, axes) are folded into
attributes; BatchNormalization, reshapes, dropout and explicit padding are ``pass`` nodes (BN folds into the
conv before it, as every deployment does; a PAD is the padding of the conv after it).

    op        attrs
    conv      cin, cout, kh, kw, sh, sw, dh, dw, groups
    act       kind: relu | relu6 | hswish | hsigmoid | sigmoid
    add       (two activation inputs; an add of a constant is a bias: folded, ``pass``)
    mul       (two activation inputs)
    mean      global: True when it pools all of H and W
    linear    cin, cout
    softmax
    pass      what: bn | pad | reshape | dropout | ...
    other     (anything else; the recogniser refuses it, naming it)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from nse_hw.errors import NseError

ACT_KINDS = ("relu", "relu6", "hswish", "hsigmoid", "sigmoid")


@dataclass
class GNode:
    name: str  # the node's name in the file (or "<op type>#<index>" when it has none)
    op: str
    src: str  # the file's op type (Conv, DEPTHWISE_CONV_2D, ...)
    inputs: tuple[str, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return f"{self.name} ({self.src})"


@dataclass
class Graph:
    """Nodes in file order, the one image input (its tensor and H, W, C) and the final output tensor."""

    path: str
    fmt: str  # "onnx" | "tflite"
    nodes: list[GNode]
    input: str
    shape: tuple[int, int, int]
    output: str
    notes: list[str] = field(default_factory=list)
    _consumers: dict[str, list[GNode]] | None = field(default=None, repr=False)

    def consumers(self, tensor: str) -> list[GNode]:
        if self._consumers is None:
            table: dict[str, list[GNode]] = defaultdict(list)
            for n in self.nodes:
                for t in dict.fromkeys(n.inputs):
                    table[t].append(n)
            self._consumers = dict(table)
        return self._consumers.get(tensor, [])


def input_hw(dims: list[int | None], layout: str, input_size: int | None, what: str) -> tuple[int, int, int]:
    """(H, W, C) of a 4-D image input from its dims (None where dynamic); ``input_size`` fills (or overrides)
    H and W. A dynamic H/W with no ``input_size`` is an error saying what to give."""
    if len(dims) != 4:
        raise NseError(f"{what}: the model input has {len(dims)} dimensions {dims}; an image model takes 4 "
                       f"({layout})")
    n, h, w, c = (dims[0], dims[2], dims[3], dims[1]) if layout == "NCHW" else tuple(dims)
    if c is None or c < 1:
        raise NseError(f"{what}: the model input's channel dimension is dynamic; export it with a fixed channel count")
    if n not in (None, 1):
        raise NseError(f"{what}: the model input has batch {n}; tables price batch 1 (export with batch 1)")
    if input_size is not None:
        if input_size < 1:
            raise NseError(f"--input-size must be >= 1, got {input_size}")
        if h is not None and w is not None and (h, w) != (input_size, input_size):
            raise NseError(f"{what}: the model's input is fixed at {h}x{w}; --input-size {input_size} cannot "
                           "change a static graph (omit it, or export the model at that size)")
        h = w = input_size
    if h is None or w is None or h < 1 or w < 1:
        raise NseError(f"{what}: the model input has a dynamic shape {dims} ({layout}); give its size with "
                       "--input-size N")
    return int(h), int(w), int(c)
