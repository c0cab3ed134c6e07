"""Recognise the units latency tables price in a model file's graph and write the network as an :class:`Arch`.

Walks the main path from the input: a stem conv (+ act), then MBConv layers ([1x1 expand + act] -> kxk depthwise
+ act -> [squeeze-excite] -> 1x1 project, with a residual add when the layer keeps stride and width), then the
1x1 head conv (+ act), the global pool and the classifier (one linear, or linear -> act -> linear), and an
optional softmax. BN, reshapes and explicit PADs are folded into the unit they belong to. Every node of the
file must end in some unit: one the walk cannot place is refused in one line naming it (no op is dropped
silently). Where a unit is priced as the nearest thing the grammar can write, the result says so in ``notes``
(an SE squeeze width other than the grammar's, SiLU as h-swish, a softmax as one element-wise pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nse_hw.errors import NseError
from nse_hw.latency.graph import GNode, Graph
from nse_hw.latency.keys import Component, arch_components, join_key
from nse_hw.space.arch import Arch, LayerSpec
from nse_hw.space.grammar import BOUNDS, Op

_ACT = {"relu6": "relu6", "relu": "re", "hswish": "hs", "silu": "hs"}  # file activation -> grammar activation
MEASURE = ("the tables price stems, MBConv blocks ([expand] depthwise [SE] project, residual add), 1x1 heads, "
           "pools and linear classifiers; time this model whole on the device instead (LiteRT benchmark_model "
           "or nse-hw latency validate)")


@dataclass
class ImportedModel:
    """A model file written as an arch, with what each unit covers and what was approximated.

    ``units``: component name (``stem``, ``layer3``, ``head``, ``classifier``, extras) -> the file's node names
    it prices. ``extras``: units beyond the arch (priced by table keys, each with a note)."""

    arch: Arch
    source: str
    fmt: str
    units: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extras: list[Component] = field(default_factory=list)
    extra_notes: dict[str, str] = field(default_factory=dict)

    def components(self, *, adds_in_ops: bool = False) -> list[Component]:
        return arch_components(self.arch, adds_in_ops=adds_in_ops) + list(self.extras)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.fmt, "arch": self.arch.to_dict(), "units": self.units,
                "notes": self.notes, "extras": {c.name: self.extra_notes.get(c.name, "") for c in self.extras}}


class _Walk:
    def __init__(self, g: Graph) -> None:
        self.g, self.seen, self.notes = g, set(), []  # type: ignore[var-annotated]
        self.names: list[str] = []  # the nodes of the unit being read
        self.se_widths: list[tuple[int, int]] = []  # (squeeze, mid) of SEs the grammar writes another width for

    # --- helpers --------------------------------------------------------------------------------------------
    def refuse(self, node: GNode | None, why: str) -> NseError:
        at = f"node {node.label()}" if node else "the graph"
        return NseError(f"{self.g.path}: cannot price {at}: {why}; {MEASURE}")

    def take(self, n: GNode) -> GNode:
        self.seen.add(id(n))
        self.names.append(n.name)
        return n

    def skip(self, t: str) -> str:
        """Follow ``t`` through pass nodes (BN, reshape, pad, ...) while it has a single consumer."""
        while len(cs := self.g.consumers(t)) == 1 and cs[0].op == "pass":
            if cs[0].attrs.get("what") == "bn" and "BatchNormalization folded into the conv before it" not in \
                    self.notes:
                self.notes.append("BatchNormalization folded into the conv before it")
            t = self.take(cs[0]).output
        return t

    def single(self, t: str, after: GNode) -> GNode:
        t = self.skip(t)
        cs = self.g.consumers(t)
        if len(cs) != 1:
            what = "nothing" if not cs else ", ".join(c.label() for c in cs)
            raise self.refuse(after, f"its output feeds {what} where one unit follows another")
        return cs[0]

    def act(self, t: str) -> tuple[str | None, str]:
        """(grammar activation, tensor after it) of the activation reading ``t``; (None, t) when there is none."""
        t = self.skip(t)
        cs = self.g.consumers(t)
        if len(cs) == 1 and cs[0].op == "act" and cs[0].attrs["kind"] in _ACT:
            return _ACT[self.take(cs[0]).attrs["kind"]], self.skip(cs[0].output)
        sig = [c for c in cs if c.op == "act" and c.attrs["kind"] == "sigmoid"]
        mul = [c for c in cs if c.op == "mul"]
        if len(cs) == 2 and sig and mul and set(mul[0].inputs) == {t, sig[0].output}:
            self.take(sig[0])
            self.take(mul[0])
            self.note("SiLU (x * sigmoid(x)) priced as h-swish: both an unfused element-wise activation; "
                      "sigmoid costs more, so this is a lower bound")
            return "hs", self.skip(mul[0].output)
        return None, t

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def unit(self) -> list[str]:
        names, self.names = self.names, []
        return names


def _is_dw(n: GNode) -> bool:
    a = n.attrs
    return n.op == "conv" and a["groups"] > 1 and a["groups"] == a["cin"] == a["cout"]


def _is_pw(n: GNode) -> bool:
    a = n.attrs
    return n.op == "conv" and a["groups"] == 1 and a["kh"] == a["kw"] == 1 and a["sh"] == a["sw"] == 1


def _square(w: _Walk, n: GNode) -> tuple[int, int, int]:
    a = n.attrs
    if a["kh"] != a["kw"] or a["kh"] % 2 == 0 or not BOUNDS["k"][0] <= a["kh"] <= BOUNDS["k"][1]:
        raise w.refuse(n, f"a {a['kh']}x{a['kw']} kernel (the grammar has square odd kernels 1..15)")
    if a["sh"] != a["sw"] or a["sh"] not in (1, 2):
        raise w.refuse(n, f"stride {a['sh']}x{a['sw']} (layers have stride 1 or 2)")
    if a["dh"] != a["dw"] or not BOUNDS["d"][0] <= a["dh"] <= BOUNDS["d"][1]:
        raise w.refuse(n, f"dilation {a['dh']}x{a['dw']}")
    return a["kh"], a["sh"], a["dh"]


def _stem(w: _Walk) -> tuple[Op, int, int, str]:
    g = w.g
    n = w.single(g.input, GNode("input", "input", "input", (), g.input))
    if n.op != "conv" or n.attrs["groups"] != 1 or n.attrs["cin"] != g.shape[2]:
        raise w.refuse(n, "the first op is not a plain conv on the image (the stem)")
    k, s, d = _square(w, w.take(n))
    if d != 1:
        raise w.refuse(n, "a dilated stem")
    act, t = w.act(n.output)
    if act is None:
        raise w.refuse(n, "a stem conv with no activation after it")
    return Op("conv", k, hs=act == "hs", re=act == "re"), n.attrs["cout"], s, t


def _se(w: _Walk, t: str, mid: int) -> tuple[bool, str]:
    """Squeeze-excite reading ``t`` (pool -> conv/linear -> act -> conv/linear -> gate -> x * gate)."""
    cs = w.g.consumers(t)
    pool = [c for c in cs if c.op == "mean"]
    mul = [c for c in cs if c.op == "mul"]
    if len(cs) != 2 or not pool or not mul:
        return False, t
    w.take(pool[0])
    r = w.single(pool[0].output, pool[0])
    if r.op not in ("conv", "linear") or r.attrs["cin"] != mid:
        raise w.refuse(r, "a squeeze-excite whose reduce step is not a 1x1 conv or linear on the pooled features")
    w.take(r)
    a1, t1 = w.act(r.output)
    x = w.single(t1, r)
    if a1 is None or x.op not in ("conv", "linear") or x.attrs["cout"] != mid:
        raise w.refuse(x, "a squeeze-excite whose expand step is not act -> 1x1 conv back to the block width")
    w.take(x)
    gate = w.single(x.output, x)
    if gate.op != "act":
        raise w.refuse(gate, "a squeeze-excite with no gate activation")
    if gate.attrs["kind"] == "sigmoid":
        w.note("squeeze-excite with a sigmoid gate priced as the grammar's hard-sigmoid one")
    w.take(gate)
    m = w.single(gate.output, gate)
    if m is not mul[0]:
        raise w.refuse(m, "a squeeze-excite gate that does not multiply the block's features")
    w.take(m)
    if (squeeze := r.attrs["cout"]) != max(8, mid // 4):
        w.se_widths.append((squeeze, mid))
    return True, w.skip(m.output)


def _layer(w: _Walk, t: str, chs: int, b: GNode) -> tuple[LayerSpec, str]:
    expand = None
    if _is_pw(b):
        expand = w.take(b)
        act0, t0 = w.act(b.output)
        b = w.single(t0, expand)
        if act0 is None or not _is_dw(b):
            raise w.refuse(expand, "a 1x1 conv that is neither an MBConv expand (act, then a depthwise conv) nor "
                                   "the head (act, then the global pool)")
    if not _is_dw(b):
        why = ("a full or grouped conv inside the network (the grammar's layers are depthwise MBConv blocks)"
               if b.op == "conv" else "an op the tables hold no unit for")
        raise w.refuse(b, why)
    mid = b.attrs["cin"]
    if expand is None and mid != chs:
        raise w.refuse(b, f"a depthwise conv on {mid} channels after a {chs}-wide layer")
    k, s, d = _square(w, w.take(b))
    act, t2 = w.act(b.output)
    if act is None:
        raise w.refuse(b, "a depthwise conv with no activation after it")
    se, t2 = _se(w, t2, mid)
    p = w.single(t2, b)
    if not _is_pw(p) or p.attrs["cin"] != mid:
        raise w.refuse(p, "the MBConv block does not end in a 1x1 project conv")
    w.take(p)
    out, t3 = p.attrs["cout"], w.skip(p.output)
    if w.act(t3)[0] is not None:
        raise w.refuse(p, "an activation after the project conv (MBConv blocks end linear)")
    adds = [c for c in w.g.consumers(t3) if c.op == "add" and t in c.inputs]
    if adds:
        if s != 1 or out != chs:
            raise w.refuse(adds[0], "a residual add across a stride or width change")
        t3 = w.skip(w.take(adds[0]).output)
    elif s == 1 and out == chs:
        raise w.refuse(p, "a stride-1 same-width block with no residual add (the grammar gives every such layer "
                          "its identity)")
    if expand is not None and expand.attrs["cout"] % chs == 0 and 2 <= expand.attrs["cout"] // chs <= BOUNDS["e"][1]:
        op = Op("mb", k, expand.attrs["cout"] // chs, d, se, act == "hs", re=act == "re")
    elif expand is not None:
        op = Op("mb", k, d=d, se=se, hs=act == "hs", m=mid, re=act == "re")
    else:
        op = Op("mb", k, 1, d, se, act == "hs", re=act == "re")
    return LayerSpec((op,), out, s), t3


def _linear(w: _Walk, n: GNode) -> GNode:
    """``n``, or a 1x1 conv on the pooled 1x1 map as the linear layer it is (timm's ``conv_head``)."""
    if not _is_pw(n):
        return n
    w.seen.add(id(n))
    return GNode(n.name, "linear", n.src, n.inputs, n.output, {"cin": n.attrs["cin"], "cout": n.attrs["cout"]})


def _tail(w: _Walk, head: GNode) -> tuple[int, str, int, int, str, str, list[str]]:
    """Head conv + act, pool, classifier: (head_out, head act, classes, hidden, hidden act, last tensor, the
    head's nodes); the pool and classifier's nodes stay in the walk's current unit."""
    w.take(head)
    act, t = w.act(head.output)
    if act is None:
        raise w.refuse(head, "a head conv with no activation after it")
    head_names = w.unit()
    pool = w.single(t, head)
    if pool.op == "transpose":  # a layout change before the pool (NHWC -> NCHW): a real pass over the features
        w.transposed = True  # type: ignore[attr-defined]
        pool = w.single(w.take(pool).output, pool)
    if pool.op != "mean" or not pool.attrs.get("global"):
        raise w.refuse(pool, "the head is not followed by a global average pool")
    fc = _linear(w, w.single(w.take(pool).output, pool))
    if fc.op != "linear" or fc.attrs["cin"] != head.attrs["cout"]:
        raise w.refuse(fc, "the pool is not followed by a linear classifier")
    w.take(fc)
    hidden, hidden_act, t = 0, "relu6", w.skip(fc.output)
    a2, t2 = w.act(t)
    if a2 is not None:
        fc2 = _linear(w, w.single(t2, fc))
        if fc2.op != "linear":
            raise w.refuse(fc2, "an activation after the classifier not followed by a second linear")
        hidden, hidden_act, t = fc.attrs["cout"], a2, w.skip(w.take(fc2).output)
        fc = fc2
    return head.attrs["cout"], act, fc.attrs["cout"], hidden, hidden_act, t, head_names


def recognise(g: Graph) -> ImportedModel:
    """The :class:`ImportedModel` of graph ``g`` (an :class:`NseError` naming the node it cannot price)."""
    w = _Walk(g)
    stem, stem_out, stem_stride, t = _stem(w)
    units = {"stem": w.unit()}
    layers: list[LayerSpec] = []
    chs = stem_out
    while True:
        t = w.skip(t)
        body = [c for c in g.consumers(t) if c.op != "add"]
        if len(body) != 1:
            what = ", ".join(c.label() for c in body) or "nothing"
            raise w.refuse(body[0] if body else None, f"tensor {t} feeds {what}: layers are chains, not branches")
        b = body[0]
        if _is_pw(b) and len(nxt := g.consumers(_after_act(g, b))) == 1 and nxt[0].op == "mean":
            break
        spec, t = _layer(w, t, chs, b)
        layers.append(spec)
        units[f"layer{len(layers) - 1}"] = w.unit()
        chs = spec.out
    head_out, head_act, classes, hidden, hidden_act, t, units["head"] = _tail(w, b)
    units["classifier"] = w.unit()
    extras: list[Component] = []
    extra_notes: dict[str, str] = {}
    h, wd = _final_hw(g.shape, stem_stride, layers)
    if getattr(w, "transposed", False):
        extras.append(Component("transpose", ((join_key("scale", (h, wd, head_out)), 1),)))
        extra_notes["transpose"] = (f"the TRANSPOSE of the {h}x{wd}x{head_out} head output before the pool priced as "
                                    "one element-wise pass of that shape (a scale: read once, write once)")
    cs = g.consumers(t)
    if len(cs) == 1 and cs[0].op == "softmax":
        t = w.skip(w.take(cs[0]).output)
        extras.append(Component("softmax", ((join_key("add", (1, 1, classes)), 1),)))
        extra_notes["softmax"] = f"softmax over {classes} logits priced as one element-wise add of that shape"
        units["softmax"] = w.unit()
    if t != g.output:
        rest = g.consumers(t)
        raise w.refuse(rest[0] if rest else None, "ops after the classifier")
    left = [n for n in g.nodes if id(n) not in w.seen and n.op != "pass"]
    if left:
        raise w.refuse(left[0], "it lies off the network's main path")
    try:
        arch = Arch(g.shape, classes, stem, stem_out, stem_stride, tuple(layers), head_out,
                    {"imported_from": g.path, "file_format": g.fmt}, "sum", head_act, hidden, hidden_act)
    except ValueError as exc:
        raise NseError(f"{g.path}: the recognised network is not a valid arch: {exc}") from None
    if w.se_widths:
        sq, mid = w.se_widths[0]
        w.note(f"{len(w.se_widths)} squeeze-excite(s) priced at the grammar's squeeze width max(8, mid // 4) "
               f"(e.g. {sq} as {max(8, mid // 4)} at mid {mid}): two 1x1 convs on one pixel, a small share")
    return ImportedModel(arch, g.path, g.fmt, units, w.notes + g.notes, extras, extra_notes)


def _final_hw(shape: tuple[int, int, int], stem_stride: int, layers: list[LayerSpec]) -> tuple[int, int]:
    h, w = shape[:2]
    for s in (stem_stride, *(x.stride for x in layers)):
        h, w = -(-h // s), -(-w // s)
    return h, w


def _after_act(g: Graph, conv: GNode) -> str:
    """The tensor after ``conv``'s activation (and pass nodes), read without taking anything (a probe)."""
    t = conv.output
    while True:
        cs = g.consumers(t)
        if len(cs) == 1 and cs[0].op in ("pass", "act"):
            t = cs[0].output
        elif len(cs) == 2 and (mul := [c for c in cs if c.op == "mul"]) and any(c.op == "act" for c in cs):
            t = mul[0].output  # SiLU: x * sigmoid(x)
        elif len(cs) == 1 and cs[0].op == "transpose":
            t = cs[0].output
        else:
            return t
