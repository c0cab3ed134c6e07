"""The op grammar: one strict, two-way text form for ops and layers.

    mb_k{k}_e{e}[_d{d}][_se][_hs|_re]   MBConv, optional dilation / squeeze-excite; activation ReLU6 (the
                                        default), _hs hard-swish or _re ReLU
    mb_k{k}_m{m}[_d{d}][_se][_hs|_re]   the same with ``m`` absolute middle (expanded) channels and always a 1x1
                                        expand conv: MobileNetV3's 24 -> 72, 80 -> 200, 80 -> 184 have no
                                        integer ratio. ``e`` ops keep their tokens (and table keys); ``mb_k3_e6``
                                        at 24 input channels and ``mb_k3_m144`` build the same block, and
                                        importers write the ``e`` form whenever it exists
    rec_k{k}_e{e}                       NSE's factorised op: 1x1 expand, 1xk, kx1, 1x1 project
    conv_k{k}[_hs|_re]                  plain conv + BN + act (the stem)
    skip                                a layer with no op (identity only)

A layer is one or more ops joined by ``+``. ``parse_*(format_*(x)) == x`` for every value, and the text form is
canonical (no ``_d1``, no leading zeros), so ``format_*(parse_*(s)) == s`` for every string that parses.
Unknown or malformed tokens raise ``ValueError`` naming the token. Sizes are bounded (:data:`BOUNDS`): every pool,
arch and table we ship stays well inside them, and ``mb_k999`` (a 38-second "op") is refused, not priced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_POS = r"([1-9][0-9]*)"
_ACT = r"(?:_(hs|re))?"
_MB = re.compile(rf"mb_k{_POS}_(?:e{_POS}|m{_POS})(?:_d([2-9]|[1-9][0-9]+))?(_se)?{_ACT}")
_REC = re.compile(rf"rec_k{_POS}_e{_POS}")
_CONV = re.compile(rf"conv_k{_POS}{_ACT}")
SKIP = "skip"
# Sane ranges (inclusive) for kernel size (odd), expand ratio and dilation; shipped ops use k3..k11, e1..e6, d1..d3.
BOUNDS = {"k": (1, 15), "e": (1, 16), "d": (1, 8)}
MID_BOUNDS = (1, 8192)  # absolute middle channels (``_m``); 0 means "not given: in_chs * e"
ACTS = ("relu6", "hs", "re")  # ReLU6 (no suffix), hard-swish, ReLU


@dataclass(frozen=True, order=True)
class Op:
    """One op token. ``kind`` is ``mb``, ``rec`` or ``conv``; unused fields keep their defaults.

    ``m``: absolute middle channels (mb only; 0: ``in_chs * e``). ``re``: ReLU instead of ReLU6 (like ``hs``, an
    activation choice; at most one of the two)."""

    kind: str
    k: int
    e: int = 1
    d: int = 1
    se: bool = False
    hs: bool = False
    m: int = 0
    re: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("mb", "rec", "conv"):
            raise ValueError(f"unknown op kind {self.kind!r}")
        if self.k % 2 == 0:
            raise ValueError(f"kernel size must be odd, got k={self.k} in {self.kind!r} op")
        for name, (lo, hi) in BOUNDS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name}={value} in {self.kind!r} op is out of range {lo}..{hi}")
        if self.kind == "rec" and (self.d != 1 or self.se or self.hs or self.re):
            raise ValueError("'rec' ops take no _d/_se/_hs/_re suffix")
        if self.kind == "conv" and (self.d != 1 or self.se):
            raise ValueError("'conv' ops take no _d/_se suffix")
        if self.kind == "conv" and self.e != 1:
            raise ValueError("conv ops take no expand ratio")
        if self.hs and self.re:
            raise ValueError(f"{self.kind!r} op has two activations (_hs and _re)")
        if self.m:
            lo, hi = MID_BOUNDS
            if self.kind != "mb":
                raise ValueError(f"{self.kind!r} ops take no middle width _m")
            if self.e != 1:
                raise ValueError("an mb op gives either an expand ratio _e or middle channels _m, not both")
            if not lo <= self.m <= hi:
                raise ValueError(f"m={self.m} in 'mb' op is out of range {lo}..{hi}")
        elif self.m != 0:
            raise ValueError(f"m={self.m} in {self.kind!r} op is out of range {MID_BOUNDS[0]}..{MID_BOUNDS[1]}")

    @property
    def act(self) -> str:
        """``relu6`` (the default), ``hs`` or ``re``."""
        return "hs" if self.hs else "re" if self.re else "relu6"

    def mid(self, in_chs: int) -> int:
        """Middle (expanded) channels at ``in_chs`` input channels."""
        return self.m if self.m else in_chs * self.e

    @property
    def expands(self) -> bool:
        """Whether the op has a 1x1 expand conv (``e`` != 1, or any ``m``)."""
        return self.kind in ("mb", "rec") and (self.e != 1 or self.m != 0)

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
        k, e, mid, d, se, act = m.groups()
        return Op("mb", int(k), int(e) if e else 1, int(d) if d else 1, bool(se), act == "hs",
                  int(mid) if mid else 0, act == "re")
    if m := _REC.fullmatch(token):
        return Op("rec", int(m.group(1)), int(m.group(2)))
    if m := _CONV.fullmatch(token):
        return Op("conv", int(m.group(1)), hs=m.group(2) == "hs", re=m.group(2) == "re")
    raise ValueError(f"unknown op token {token!r} (expected mb_k<k>_e<e>|_m<mid>[_d<d>][_se][_hs|_re], "
                     f"rec_k<k>_e<e>, conv_k<k>[_hs|_re] or skip)")


def _act_suffix(op: Op) -> str:
    return "_hs" if op.hs else "_re" if op.re else ""


def format_op(op: Op) -> str:
    if op.kind == "conv":
        return f"conv_k{op.k}{_act_suffix(op)}"
    if op.kind == "rec":
        return f"rec_k{op.k}_e{op.e}"
    text = f"mb_k{op.k}_m{op.m}" if op.m else f"mb_k{op.k}_e{op.e}"
    if op.d != 1:
        text += f"_d{op.d}"
    return text + ("_se" if op.se else "") + _act_suffix(op)


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
