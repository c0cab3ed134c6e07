"""Dataclass configs loaded from YAML (configs/*.yaml), strict about unknown keys and types."""

from __future__ import annotations

import dataclasses
import math
import operator
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, prefix=f"{name}.")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if origin in (list, tuple) and isinstance(value, list | tuple):
        items = set(typing.get_args(hint)) - {Ellipsis}
        if len(items) != 1:
            return origin(value)
        item = items.pop()
        return origin(_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value))
    base = origin or hint
    if base is int and isinstance(value, bool):  # YAML's `yes` is not a count
        raise ValueError(f"config field {name!r} must be int, got {value!r}")
    if isinstance(base, type) and not isinstance(value, base):
        raise ValueError(f"config field {name!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Any, *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys are an error naming them."""
    if not isinstance(data, dict):
        section = f"section {prefix.rstrip('.')!r}" if prefix else "file"
        raise ValueError(f"config {section} must be a mapping of keys to values, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def read_yaml(path: str | Path, *, what: str) -> Any:
    """Parse a YAML file; unreadable or invalid files are one-line ValueErrors naming ``what`` and the path."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Defaults of ``cls``, then the YAML file, then non-None ``overrides`` (e.g. from CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path, what="config") or {}
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must hold a mapping of keys to values, not a {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(cls, data)


def in_range(value: float, interval: str) -> bool:
    """``value`` finite and inside ``interval``, written as in maths: '[1, inf)', '(0, 1]', '[8, 1024]'."""
    lo_text, hi_text = interval[1:-1].split(",")
    lo, hi = float(lo_text), float(hi_text)
    above = value >= lo if interval[0] == "[" else value > lo
    below = value <= hi if interval[-1] == "]" else value < hi
    return math.isfinite(value) and above and below


def check_ranges(cfg: Any, ranges: dict[str, str], *, what: str) -> None:
    """Refuse the first field (dotted path; None = unset, skipped; lists: every item) outside its interval."""
    for name, interval in ranges.items():
        value = operator.attrgetter(name)(cfg)
        items = value if isinstance(value, list | tuple) else [value]
        if any(v is not None and not in_range(v, interval) for v in items):
            raise ValueError(f"{what}: {name}={value!r} is out of range; allowed: {interval}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def edited_keys(path: str | Path, expected: dict[str, Any]) -> list[str]:
    """Keys of ``expected`` whose value in the YAML file ``path`` differs (none when there is no such file).

    ``--resume`` continues with the config a run started with; an edit to the run's config.yaml would otherwise be
    silently ignored, so callers refuse when this is not empty.
    """
    path = Path(path)
    if not path.exists():
        return []
    on_disk = read_yaml(path, what="run config")
    if not isinstance(on_disk, dict):
        return sorted(expected)
    return sorted(k for k in expected if on_disk.get(k) != expected[k])
