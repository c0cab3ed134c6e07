"""Search spaces: a fixed skeleton (stem, stages, head) and an op pool for the searchable layers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nse_hw.config import read_yaml
from nse_hw.paths import SPACES
from nse_hw.space.arch import Arch, LayerSpec, Shape
from nse_hw.space.grammar import Layer, Op, format_layer, parse_layer, parse_op

MAX_DEPTH = 100  # layers per stage


@dataclass(frozen=True)
class Position:
    """One layer of the skeleton. Fixed layers have exactly one choice (their ops)."""

    out: int
    stride: int
    searchable: bool
    skippable: bool
    fixed: Layer = ()


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input: Shape
    classes: int
    stem: Op
    stem_out: int
    stem_stride: int
    positions: tuple[Position, ...]
    head_out: int
    pool: tuple[Op, ...]

    @property
    def searchable(self) -> list[int]:
        """Indices (into ``positions``) of the searchable layers."""
        return [i for i, p in enumerate(self.positions) if p.searchable]

    def arch(self, choices: list[Layer] | tuple[Layer, ...], **meta: Any) -> Arch:
        """Build the arch that puts ``choices[j]`` in the j-th searchable layer."""
        if len(choices) != len(self.searchable):
            raise ValueError(f"space {self.name} has {len(self.searchable)} searchable layers, "
                             f"got {len(choices)} choices")
        it = iter(choices)
        layers = [LayerSpec(next(it) if p.searchable else p.fixed, p.out, p.stride) for p in self.positions]
        return Arch(self.input, self.classes, self.stem, self.stem_out, self.stem_stride, tuple(layers),
                    self.head_out, {"space": self.name, **meta})

    def choices_of(self, arch: Arch) -> list[Layer]:
        """Inverse of :meth:`arch` (checks the arch has this space's skeleton and uses pool ops only)."""
        if len(arch.layers) != len(self.positions):
            raise ValueError(f"arch has {len(arch.layers)} layers; space {self.name} has {len(self.positions)}")
        pool = set(self.pool)
        out = []
        for i, (p, spec) in enumerate(zip(self.positions, arch.layers, strict=True)):
            if (spec.out, spec.stride) != (p.out, p.stride):
                raise ValueError(f"layer {i} of the arch does not match space {self.name}'s skeleton")
            if p.searchable:
                bad = [op for op in spec.ops if op not in pool]
                if bad:
                    raise ValueError(f"layer {i} uses {format_layer(tuple(bad))}, not in space {self.name}'s pool")
                out.append(spec.ops)
        return out

    def sample(self, rng: np.random.Generator, *, max_branches: int = 3, p_skip: float = 0.15) -> Arch:
        """A random arch: each searchable layer gets skip (where legal) or 1..max_branches distinct pool ops."""
        choices = []
        for j in self.searchable:
            if self.positions[j].skippable and rng.random() < p_skip:
                choices.append(())
                continue
            n = int(rng.integers(1, max_branches + 1))
            idx = rng.choice(len(self.pool), size=min(n, len(self.pool)), replace=False)
            choices.append(tuple(self.pool[i] for i in sorted(idx)))
        return self.arch(choices)


def _positions(cfg: dict[str, Any], stem_out: int) -> list[Position]:
    positions, chs = [], stem_out
    for fx in cfg.get("fixed", []):
        positions.append(Position(int(fx["out"]), int(fx["stride"]), False, False, parse_layer(fx["ops"])))
        chs = int(fx["out"])
    for st in cfg["stages"]:
        if not 1 <= int(st["depth"]) <= MAX_DEPTH:  # before looping over it: depth 10**9 would hang here
            raise ValueError(f"stage depth must be in 1..{MAX_DEPTH}, got {st['depth']}")
        for d in range(int(st["depth"])):
            stride = int(st["stride"]) if d == 0 else 1
            skippable = bool(cfg.get("skip", True)) and stride == 1 and chs == int(st["out"])
            positions.append(Position(int(st["out"]), stride, True, skippable))
            chs = int(st["out"])
    return positions


def space_from_dict(cfg: dict[str, Any]) -> SearchSpace:
    if not isinstance(cfg, dict):
        raise ValueError(f"a space file must hold a mapping, not a {type(cfg).__name__}")
    try:
        stem = cfg["stem"]
        pool = tuple(parse_op(t) for t in cfg["pool"])
        if not pool or len(set(pool)) != len(pool):
            raise ValueError("pool must be a non-empty list of distinct ops")
        if any(op.kind == "conv" for op in pool):
            raise ValueError("conv ops cannot be in the pool")
        space = SearchSpace(str(cfg["name"]), tuple(int(v) for v in cfg["input"]), int(cfg["classes"]),
                            parse_op(stem["op"]), int(stem["out"]), int(stem["stride"]),
                            tuple(_positions(cfg, int(stem["out"]))), int(cfg["head"]["out"]), pool)
        space.arch([(pool[0],)] * len(space.searchable))  # the arch checks: sizes, strides, input vs stride
        return space
    except (KeyError, TypeError) as exc:
        raise ValueError(f"space config is missing or mistypes field {exc}") from None


def available_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES.glob("*.yaml"))


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Load a space by name (``configs/spaces/NAME.yaml``) or from a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPACES / f"{name_or_path}.yaml"
        if not path.exists():
            raise ValueError(f"unknown space {str(name_or_path)!r}; known: {', '.join(available_spaces())}")
    cfg = read_yaml(path, what="space file")
    try:
        return space_from_dict(cfg)
    except ValueError as exc:
        raise ValueError(f"space {path}: {exc}") from None
