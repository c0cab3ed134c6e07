"""The op grammar: one strict, two-way text form for ops and layers.

    mb_k{k}_e{e}[_d{d}][_se][_hs]   MBConv (ReLU6 unless _hs), optional dilation / squeeze-excite / hard-swish
    rec_k{k}_e{e}                    NSE's factorised op: 1x1 expand, 1xk, kx1, 1x1 project
    conv_k{k}                        plain conv + BN + act (the stem)
    skip                             a layer with no op (identity only)

A layer is one or more ops joined by ``+``. ``parse_*(format_*(x)) == x`` for every value, and the text form is
canonical (no ``_d1``, no leading zeros), so ``format_*(parse_*(s)) == s`` for every string that parses.
Unknown or malformed tokens raise ``ValueError`` naming the token. Sizes are bounded (:data:`BOUNDS`): every pool,
arch and table we ship stays well inside them, and ``mb_k999`` (a 38-second "op") is refused, not priced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_POS = r"([1-9][0-9]*)"
_MB = re.compile(rf"mb_k{_POS}_e{_POS}(?:_d([2-9]|[1-9][0-9]+))?(_se)?(_hs)?")
_REC = re.compile(rf"rec_k{_POS}_e{_POS}")
_CONV = re.compile(rf"conv_k{_POS}")
SKIP = "skip"
# Sane ranges (inclusive) for kernel size (odd), expand ratio and dilation; shipped ops use k3..k11, e1..e6, d1..d3.
BOUNDS = {"k": (1, 15), "e": (1, 16), "d": (1, 8)}


@dataclass(frozen=True, order=True)
class Op:
    """One op token. ``kind`` is ``mb``, ``rec`` or ``conv``; unused fields keep their defaults."""

    kind: str
    k: int
    e: int = 1
    d: int = 1
    se: bool = False
    hs: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("mb", "rec", "conv"):
            raise ValueError(f"unknown op kind {self.kind!r}")
        if self.k % 2 == 0:
            raise ValueError(f"kernel size must be odd, got k={self.k} in {self.kind!r} op")
        for name, (lo, hi) in BOUNDS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name}={value} in {self.kind!r} op is out of range {lo}..{hi}")
        if self.kind != "mb" and (self.d != 1 or self.se or self.hs):
            raise ValueError(f"{self.kind!r} ops take no _d/_se/_hs suffix")
        if self.kind == "conv" and self.e != 1:
            raise ValueError("conv ops take no expand ratio")

    def __str__(self) -> str:
        return format_op(self)


def parse_op(token: str) -> Op:
    """Parse one op token (not ``skip``; see :func:`parse_layer`)."""
    if not isinstance(token, str):
        raise ValueError(f"op token must be a string, got {token!r}")
    try:
        return _parse_op(token)
    except ValueError as exc:
        raise ValueError(f"bad op token {token!r}: {exc}") if "op token" not in str(exc) else exc from None


def _parse_op(token: str) -> Op:
    if m := _MB.fullmatch(token):
        k, e, d, se, hs = m.groups()
        return Op("mb", int(k), int(e), int(d) if d else 1, bool(se), bool(hs))
    if m := _REC.fullmatch(token):
        return Op("rec", int(m.group(1)), int(m.group(2)))
    if m := _CONV.fullmatch(token):
        return Op("conv", int(m.group(1)))
    raise ValueError(f"unknown op token {token!r} (expected mb_k<k>_e<e>[_d<d>][_se][_hs], rec_k<k>_e<e>, "
                     f"conv_k<k> or skip)")


def format_op(op: Op) -> str:
    if op.kind == "conv":
        return f"conv_k{op.k}"
    if op.kind == "rec":
        return f"rec_k{op.k}_e{op.e}"
    text = f"mb_k{op.k}_e{op.e}"
    if op.d != 1:
        text += f"_d{op.d}"
    return text + ("_se" if op.se else "") + ("_hs" if op.hs else "")


Layer = tuple[Op, ...]  # the branches of one layer; () is `skip`


def parse_layer(text: str) -> Layer:
    """``mb_k3_e6+rec_k5_e2`` -> (Op, Op); ``skip`` -> ()."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"layer must be a non-empty string, got {text!r}")
    if text == SKIP:
        return ()
    tokens = text.split("+")
    if SKIP in tokens:
        raise ValueError(f"'skip' cannot be joined with other ops in layer {text!r}")
    ops = tuple(parse_op(t) for t in tokens)
    if any(op.kind == "conv" for op in ops):
        raise ValueError(f"conv ops are for the stem only, not layer {text!r}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"layer {text!r} repeats an op")
    return ops


def format_layer(layer: Layer) -> str:
    return "+".join(format_op(op) for op in layer) if layer else SKIP
