"""Arch files: a self-contained JSON description of one network of the MBConv family.

    {"format": "nse-hw/arch/1", "input": [224, 224, 3], "classes": 1000,
     "stem": {"op": "conv_k3", "out": 32, "stride": 2},
     "layers": [{"ops": "mb_k3_e1", "out": 16, "stride": 1}, ...],
     "head": {"out": 1280}}

``"join"`` says how a layer's terms (its branches, and the identity in stride-1 same-width layers) combine:
``"mean"`` (the default, omitted from the file: NSE's rule, one 1/n multiply per multi-term layer) or ``"sum"``
(a plain residual ``x + f(x)``: what MobileNetV2, MnasNet and ProxylessNAS-Mobile run; no multiply).

Optional, for networks beyond MobileNetV2 (all omitted from the file at their defaults, so older files load and
write unchanged): ``"head": {"out": 960, "act": "hs"}`` (the head's activation: ``relu6``, the default, ``hs`` or
``re``) and ``"classifier": {"hidden": 1280, "act": "hs"}`` (MobileNetV3's pool -> linear -> act -> linear; the
default is pool -> linear).

An optional ``meta`` object (free-form: where the arch came from, its predicted latency...) is carried along
but is not part of the architecture's identity.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nse_hw.jsonio import read_json
from nse_hw.paths import ARCHS
from nse_hw.space.grammar import Layer, Op, format_layer, format_op, parse_layer, parse_op

ARCH_FORMAT = "nse-hw/arch/1"
JOINS = ("mean", "sum")  # how a layer's terms combine; "mean" is the default and is not written
ACTS = ("relu6", "hs", "re")  # head / classifier activations (ReLU6 is the default and is not written)
Shape = tuple[int, int, int]  # H, W, C (channel-last, as the deployed model sees it)


@dataclass(frozen=True)
class LayerSpec:
    ops: Layer
    out: int
    stride: int

    def __post_init__(self) -> None:
        if self.out < 1 or self.stride not in (1, 2):
            raise ValueError(f"layer needs out >= 1 and stride 1 or 2, got out={self.out} stride={self.stride}")


def has_identity(in_chs: int, spec: LayerSpec) -> bool:
    """Stride-1 same-width layers carry the identity as one more term of the branch mean."""
    return spec.stride == 1 and in_chs == spec.out


def out_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded conv (PyTorch padding k//2 * d)."""
    return math.ceil(size / stride)


@dataclass(frozen=True)
class Arch:
    input: Shape
    classes: int
    stem: Op
    stem_out: int
    stem_stride: int
    layers: tuple[LayerSpec, ...]
    head_out: int
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    join: str = "mean"
    head_act: str = "relu6"
    hidden: int = 0  # the classifier's hidden linear width (0: none, pool -> linear)
    hidden_act: str = "relu6"

    def __post_init__(self) -> None:
        if self.join not in JOINS:
            raise ValueError(f"join must be one of {', '.join(JOINS)}, got {self.join!r}")
        for name, act in (("head act", self.head_act), ("classifier act", self.hidden_act)):
            if act not in ACTS:
                raise ValueError(f"{name} must be one of {', '.join(ACTS)}, got {act!r}")
        if self.hidden < 0 or (not self.hidden and self.hidden_act != "relu6"):
            raise ValueError(f"classifier hidden must be >= 1 (or 0: none, with no act), got {self.hidden}")
        if len(self.input) != 3 or min(self.input) < 1:
            raise ValueError(f"input must be [H, W, C] with positive sizes, got {list(self.input)}")
        for name, value in (("classes", self.classes), ("stem out", self.stem_out), ("head out", self.head_out)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem stride must be 1 or 2, got {self.stem_stride}")
        if self.stem.kind != "conv":
            raise ValueError(f"stem op must be conv_k<k>, got {format_op(self.stem)!r}")
        chs = self.stem_out
        for i, spec in enumerate(self.layers):
            if not spec.ops and not has_identity(chs, spec):
                raise ValueError(f"layer {i} is 'skip' but changes stride or width ({chs}->{spec.out}, "
                                 f"stride {spec.stride}); skip is legal only in stride-1 same-width layers")
            chs = spec.out
        # below this every stride-2 layer past the 1x1 point only pads: the net is not what the file says
        if min(self.input[:2]) < self.total_stride:
            raise ValueError(f"input {self.input[0]}x{self.input[1]} is smaller than the network's total stride "
                             f"{self.total_stride}; use at least {self.total_stride}x{self.total_stride}")

    @property
    def total_stride(self) -> int:
        return self.stem_stride * math.prod(s.stride for s in self.layers)

    def layer_inputs(self) -> list[Shape]:
        """Input shape (H, W, C) of every layer, then of the head (last element)."""
        h, w = out_size(self.input[0], self.stem_stride), out_size(self.input[1], self.stem_stride)
        shapes, chs = [], self.stem_out
        for spec in self.layers:
            shapes.append((h, w, chs))
            h, w, chs = out_size(h, spec.stride), out_size(w, spec.stride), spec.out
        shapes.append((h, w, chs))
        return shapes

    def with_layers(self, layers: list[LayerSpec] | tuple[LayerSpec, ...], **meta: Any) -> Arch:
        return dataclasses.replace(self, layers=tuple(layers), meta={**self.meta, **meta})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": ARCH_FORMAT, "input": list(self.input), "classes": self.classes,
            "stem": {"op": format_op(self.stem), "out": self.stem_out, "stride": self.stem_stride},
            "layers": [{"ops": format_layer(s.ops), "out": s.out, "stride": s.stride} for s in self.layers],
            "head": {"out": self.head_out},
        }
        if self.head_act != "relu6":
            d["head"]["act"] = self.head_act
        if self.hidden:
            d["classifier"] = {"hidden": self.hidden, **({"act": self.hidden_act} if self.hidden_act != "relu6"
                                                          else {})}
        if self.join != "mean":
            d["join"] = self.join
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Arch:
        if not isinstance(d, dict):
            raise ValueError("arch file must hold a JSON object")
        if d.get("format") != ARCH_FORMAT:
            raise ValueError(f"arch format {d.get('format')!r} is not {ARCH_FORMAT!r}")
        stem, head, layers = _obj(d, "stem"), _obj(d, "head"), _field(d, "layers", list)
        specs = []
        for i, x in enumerate(layers):
            x = _obj({f"layers[{i}]": x}, f"layers[{i}]")
            specs.append(LayerSpec(parse_layer(_field(x, "ops", str, f"layers[{i}].")), _int(x, "out", f"layers[{i}]."),
                                   _int(x, "stride", f"layers[{i}].")))
        shape = _field(d, "input", list)
        if len(shape) != 3:
            raise ValueError(f"input must be [H, W, C], got {shape!r}")
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError("field meta must be an object")
        join = d.get("join", "mean")
        if join not in JOINS:
            raise ValueError(f"arch field join must be one of {', '.join(JOINS)}, got {_short(join)}")
        head_act = _act(head, "head.")
        hidden, hidden_act = 0, "relu6"
        if "classifier" in d:
            clf = _obj(d, "classifier")
            hidden, hidden_act = _int(clf, "hidden", "classifier."), _act(clf, "classifier.")
        return cls(tuple(_int({"input": v}, "input") for v in shape), _int(d, "classes"),  # type: ignore[arg-type]
                   parse_op(_field(stem, "op", str, "stem.")), _int(stem, "out", "stem."),
                   _int(stem, "stride", "stem."), tuple(specs), _int(head, "out", "head."), dict(meta), join,
                   head_act, hidden, hidden_act)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"


def shipped_archs() -> list[str]:
    """Names of the shipped arch files (configs/archs/NAME.json)."""
    return sorted(p.stem for p in ARCHS.glob("*.json"))


def load_arch(path: str | Path) -> Arch:
    """Read an arch file, or a shipped one by name (``mobilenetv2-1.0-224``: configs/archs/mobilenetv2-1.0-224.json);
    every problem is a ValueError naming the file."""
    path = Path(path)
    if not path.exists() and path.suffix != ".json" and len(path.parts) == 1:  # a bare name: a shipped arch
        if not (ARCHS / f"{path}.json").is_file():
            raise ValueError(f"no arch file {str(path)!r}, nor a shipped arch of that name (shipped: "
                             f"{', '.join(shipped_archs())})")
        path = ARCHS / f"{path}.json"
    d = read_json(path, what="arch file")
    try:
        return Arch.from_dict(d)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _field(d: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    if key not in d:
        raise ValueError(f"arch file is missing field {where}{key}")
    if not isinstance(d[key], kind) or isinstance(d[key], bool):
        raise ValueError(f"arch field {where}{key} must be {_KINDS[kind]}, got {_short(d[key])}")
    return d[key]


def _act(d: dict[str, Any], where: str) -> str:
    act = d.get("act", "relu6")
    if act not in ACTS:
        raise ValueError(f"arch field {where}act must be one of {', '.join(ACTS)}, got {_short(act)}")
    return str(act)


def _obj(d: dict[str, Any], key: str) -> dict[str, Any]:
    return _field(d, key, dict)  # type: ignore[no-any-return]


def _int(d: dict[str, Any], key: str, where: str = "") -> int:
    return int(_field(d, key, int, where))  # JSON integers only: 3.7, "32", true are mistakes, not widths


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


_KINDS = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def save_arch(arch: Arch, path: str | Path) -> Path:
    from nse_hw.atomic import atomic_write_text

    return atomic_write_text(path, arch.dumps())


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """tf-slim's rounding of a scaled width to a multiple of ``divisor`` (never below ``min_value``)."""
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    floor = divisor if min_value is None else min_value
    new_v = max(floor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not remove more than 10%
        new_v += divisor
    return new_v


def _scale(chs: int, mult: float, *, divisor: int = 4) -> int:
    # make_divisible, not round(): Python rounds half to even, so at x0.25 the 24- and 40-wide stages both became 8
    return make_divisible(chs * mult, divisor)


def adapt_arch(arch: Arch, *, resolution: int, channels: int, classes: int, width_mult: float = 1.0) -> Arch:
    """The same layer sequence for a proxy task: another input (H=W=resolution, channels), classes and widths.

    Latency is always counted on the original (deployment) arch; this is only what the proxy trains.
    """
    if width_mult <= 0:
        raise ValueError(f"width_mult must be positive, got {width_mult}")
    layers = tuple(LayerSpec(scale_mid(s.ops, width_mult, _scale), _scale(s.out, width_mult), s.stride)
                   for s in arch.layers)
    return dataclasses.replace(arch, input=(resolution, resolution, channels), classes=classes,
                               stem_out=_scale(arch.stem_out, width_mult), layers=layers,
                               head_out=_scale(arch.head_out, width_mult),
                               hidden=_scale(arch.hidden, width_mult) if arch.hidden else 0,
                               meta={**arch.meta, "proxy_of": list(arch.input) + [arch.classes],
                                     "width_mult": width_mult})


def scale_mid(ops: Layer, width: float, rule: Any) -> Layer:
    """``ops`` with every absolute middle width (``_m``) scaled by ``rule(m, width)``; ratio ops unchanged."""
    if width == 1.0:
        return ops
    return tuple(dataclasses.replace(op, m=rule(op.m, width)) if op.m else op for op in ops)
