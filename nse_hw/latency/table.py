"""Latency lookup tables: one JSON file per device x runtime, with provenance, written atomically.

    {"format": "nse-hw/latency-table/1",
     "meta": {"device": "host", "runtime": "litert", "runtime_version": ..., "threads": 1, "dtype": "float32",
              "batch": 1, "statistic": "median", "warmup": ..., "runs": ..., "created": ..., "host": {...},
              "tool_version": ..., "space": ..., "calibration": {"slope": a, "intercept_ms": b, ...}},
     "entries": {"mb_k5_e6|in=56x56x24|out=40|s=2": {"ms": ..., "p10": ..., "p90": ..., "n": ..., "source": ...}}}

A miss is a :class:`LatencyMiss` naming the key and the command that fills it, never a default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nse_hw.atomic import atomic_write_json
from nse_hw.errors import LatencyMiss, NseError
from nse_hw.paths import TABLES


def utc_now() -> str:
    """The time stamps of table provenance: UTC, to the second, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


TABLE_FORMAT = "nse-hw/latency-table/1"
SOURCES = ("measured", "imported", "predicted")
DEPLOY_RUNTIMES = ("litert", "tflite")  # a device with several tables: its TFLite-family one is the default


@dataclass
class LatencyTable:
    meta: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path else f"{self.meta.get('device')}-{self.meta.get('runtime')}"

    def fill_hint(self) -> str:
        m = self.meta
        if m.get("device") == "host":
            return (f"nse-hw profile --device host --runtime {m.get('runtime')} --threads {m.get('threads')} "
                    f"--space SPACE --out {self.path or 'TABLE'}")
        return f"nse-hw profile --device {m.get('device')} --space SPACE (or nse-hw tables transfer)"

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def ms(self, key: str) -> float:
        try:
            return float(self.entries[key]["ms"])
        except KeyError:
            raise LatencyMiss([key], self.name, self.fill_hint()) from None

    def require(self, keys: list[str]) -> None:
        """Raise one error naming every key of ``keys`` the table lacks."""
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise LatencyMiss(missing, self.name, self.fill_hint())

    def set(self, key: str, *, ms: float, source: str, **stats: Any) -> None:
        if source not in SOURCES:
            raise ValueError(f"entry source must be one of {SOURCES}, got {source!r}")
        self.entries[key] = {"ms": float(ms), **stats, "source": source}

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "meta": self.meta, "entries": self.entries}

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("table has no path to save to")
        self.path = atomic_write_json(target, self.to_dict())
        return self.path


def resolve_table_path(name_or_path: str | Path) -> Path:
    """A path as given, or a shipped table by name (``host-litert`` -> latency_tables/host-litert.json)."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return path
    return TABLES / f"{name_or_path}.json"


def load_table(path: str | Path, *, runtime: str | None = None) -> LatencyTable:
    """Load and check a table; every problem is an :class:`NseError` naming the file."""
    path = resolve_table_path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        shipped = ", ".join(sorted(p.stem for p in TABLES.glob("*.json"))) or "none"
        raise NseError(f"no latency table at {path} (shipped tables: {shipped})") from None
    except OSError as exc:
        raise NseError(f"cannot read latency table {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NseError(f"latency table {path} is corrupt (not valid JSON)") from None
    if not isinstance(d, dict) or d.get("format") != TABLE_FORMAT:
        fmt = d.get("format") if isinstance(d, dict) else None
        raise NseError(f"latency table {path} has format {fmt!r}, expected {TABLE_FORMAT!r}")
    meta, entries = d.get("meta"), d.get("entries")
    if not isinstance(meta, dict) or not isinstance(entries, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("ms"), int | float) for e in entries.values()
    ):
        raise NseError(f"latency table {path} is corrupt (bad meta or entries)")
    if runtime is not None and meta.get("runtime") != runtime:
        raise NseError(f"latency table {path} was measured with runtime {meta.get('runtime')!r}, not {runtime!r}")
    return LatencyTable(meta, entries, path)


def table_for_device(device: str) -> Path:
    """The shipped table of ``device``: latency_tables/<device>-<runtime>.json, the TFLite-family runtime's when
    the device has several."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", device):
        raise NseError(f"malformed device name {device!r}")
    found = sorted(TABLES.glob(f"{device}-*.json"))
    if not found:
        raise NseError(f"no latency table for device {device!r} in {TABLES}; measure one with: "
                       f"nse-hw profile --device {device}  (or pass --table PATH)")
    preferred = [p for rt in DEPLOY_RUNTIMES for p in found if p.stem == f"{device}-{rt}"]
    if preferred:
        return preferred[0]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise NseError(f"device {device!r} has several tables ({names}); choose one with --table PATH")
    return found[0]
