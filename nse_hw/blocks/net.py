"""Layers (mean or sum of branches), stem, head, classifier, and whole networks built from arch files."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nse_hw.blocks.ops import act_module, build_op, conv_bn
from nse_hw.space.arch import Arch, LayerSpec, has_identity
from nse_hw.space.grammar import format_layer


class MultiBranch(nn.Module):
    """A layer: the mean of its branches, the identity counting as one more term where it applies (NSE's rule),
    or with ``join="sum"`` their plain sum (MobileNetV2's residual ``x + f(x)``: no multiply)."""

    def __init__(self, in_chs: int, spec: LayerSpec, join: str = "mean") -> None:
        super().__init__()
        self.identity = has_identity(in_chs, spec)
        self.join = join
        self.branches = nn.ModuleList(build_op(op, in_chs, spec.out, spec.stride) for op in spec.ops)
        self.label = format_layer(spec.ops)

    def forward(self, x: Tensor) -> Tensor:
        terms = [b(x) for b in self.branches] + ([x] if self.identity else [])
        out = terms[0]
        for t in terms[1:]:
            out = out + t
        return out * (1.0 / len(terms)) if len(terms) > 1 and self.join == "mean" else out

    def extra_repr(self) -> str:
        return f"{self.label}, identity={self.identity}, join={self.join}"


class Head(nn.Module):
    """1x1 conv + BN + act (ReLU6 unless ``act``) to the head width."""

    def __init__(self, in_chs: int, out_chs: int, act: str = "relu6") -> None:
        super().__init__()
        self.conv = conv_bn(in_chs, out_chs, 1, act=act_module(act))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Classifier(nn.Module):
    """Global average pool + linear; with ``hidden``, pool + linear + act + linear (MobileNetV3)."""

    def __init__(self, in_chs: int, classes: int, *, hidden: int = 0, act: str = "relu6") -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_chs, hidden), act_module(act)) if hidden else nn.Identity()
        self.fc = nn.Linear(hidden or in_chs, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.hidden(x.mean((2, 3))))


class Net(nn.Module):
    """A plain network built from an arch file (NCHW input)."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        self.stem = build_op(arch.stem, arch.input[2], arch.stem_out, arch.stem_stride)
        chs, layers = arch.stem_out, []
        for spec in arch.layers:
            layers.append(MultiBranch(chs, spec, arch.join))
            chs = spec.out
        self.layers = nn.Sequential(*layers)
        self.head = Head(chs, arch.head_out, arch.head_act)
        self.classifier = Classifier(arch.head_out, arch.classes, hidden=arch.hidden, act=arch.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.head(self.layers(self.stem(x))))


def build_network(arch: Arch, *, seed: int | None = None) -> Net:
    """Build ``arch`` as a plain ``nn.Module`` (weights drawn from ``seed`` when given)."""
    if seed is None:
        return Net(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Net(arch)
