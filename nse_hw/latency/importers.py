"""Import public latency tables onto our keys (``source: imported``), with a report of what did not map.

Formats:

- ``proxylessnas`` — han-cai's ``mobile_trim.yaml`` (Pixel 1, TFLite; ms mean/var/count). ``Conv`` is the stem (a
  3x3 conv in the ProxylessNAS code: the key does not say so), ``expanded_conv`` an MBConv with ``expand`` = ratio,
  ``Conv_1`` the 1x1 head, ``Logits`` pool + linear on the pre-pool map (our classifier key: same input shape).
- ``ofa`` — Once-for-All tables (e.g. Note10; mean/std/count). ``expand`` is the absolute middle width, so
  e = mid / in (skipped when not integral); ``se``/``hs`` flags become ``_se``/``_hs``. The stem (``Conv``) and
  ``Conv_1`` (1x1 to the final width) use h-swish where ours use ReLU6: imported as our stem and head keys with
  ``approx`` on the entry saying so (an upper bound: one elementwise op more). ``Logits`` on the pooled 1x1 map
  is our classifier at that shape (pooling a 1x1 map is a no-op). ``AvgPool2D`` and ``Conv_2`` (a 1x1 conv on
  the pooled vector) have no counterpart in our nets: reported as unmapped, never guessed.
- ``benchmark-profile`` — a ``benchmark_model --enable_op_profiling`` log plus the arch it ran (``arch``): the
  element-wise ``ADD`` nodes, in run order, are the arch's ``add`` units in network order (their count must
  match); entries average the nodes of one shape. Other nodes (pieces of blocks) are not imported.

Residual blocks (``idskip:1``) were timed *with* their residual add, while our op keys time the op alone and the
add is its own ``add|in=...`` key. Where the table being imported into already holds that add (e.g. from the
real profile of the same phone, imported first), it is subtracted (``raw_ms`` and ``minus_add_ms`` are kept in
the entry); otherwise the value is kept as it is and flagged ``includes_residual_add`` (0.1-1% of a block on
the Pixel 1). A table whose residual blocks all kept their add (the OFA Note10 tables: no standalone add exists
for that phone) is marked ``meta.residual_add: in-op``: its identity layers are priced without an add key
(``keys.join_counts``), so residual networks get a price where an add alone was never timed; later imports
into it keep their adds too, so the table stays one convention. Unknown key shapes are an error naming them,
or, with ``allow_partial``, listed in the report and in the table metadata.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nse_hw import __version__
from nse_hw.errors import NseError
from nse_hw.latency.keys import arch_components, classifier_key, head_key, join_key, op_key, parse_key
from nse_hw.latency.table import LatencyTable, utc_now
from nse_hw.space.arch import Arch
from nse_hw.space.grammar import Op

FORMATS = ("proxylessnas", "ofa", "benchmark-profile")
_SH = r"(\d+)x(\d+)x(\d+)"
_BLOCK = re.compile(rf"expanded_conv-input:{_SH}-output:{_SH}-expand:(\d+)-kernel:(\d+)-stride:(\d+)-idskip:([01])"
                    r"(?:-se:([01])-hs:([01]))?")
_CONV = re.compile(rf"Conv-input:{_SH}-output:{_SH}")
_HEAD = re.compile(rf"Conv_1-input:{_SH}-output:{_SH}")
_LOGITS = re.compile(rf"Logits-input:{_SH}-output:(\d+)")


@dataclass
class ImportReport:
    source: str
    format: str
    sha256: str
    imported: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source key -> why
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["imported"] = len(self.imported)
        return d


@dataclass(frozen=True)
class _Row:
    raw: str
    key: str | None  # None: unmapped (reason in ``why``)
    ms: float
    stats: dict[str, Any]
    residual: bool = False
    why: str = ""


def _ints(groups: tuple[str | None, ...]) -> list[int]:
    return [int(g) if g is not None else 0 for g in groups]


def _stride_ok(h: int, oh: int, s: int) -> bool:
    return math.ceil(h / s) == oh


def _block_row(raw: str, m: re.Match[str], stats: dict[str, Any], ms: float, *, fmt: str) -> _Row:
    h, w, c, oh, ow, o, ex, k, s, idskip, se, hs = _ints(m.groups())
    if not (_stride_ok(h, oh, s) and _stride_ok(w, ow, s)):
        return _Row(raw, None, ms, stats, why=f"output {oh}x{ow} is not input {h}x{w} at stride {s}")
    if fmt == "ofa":
        if ex % c:
            return _Row(raw, None, ms, stats, why=f"middle width {ex} is not a multiple of the input width {c}")
        ex //= c
    if idskip and (s != 1 or c != o):
        return _Row(raw, None, ms, stats, why="idskip:1 on a block that changes stride or width")
    key = op_key(Op("mb", k, ex, se=bool(se), hs=bool(hs)), (h, w, c), o, s)
    return _Row(raw, key, ms, stats, residual=bool(idskip))


HSWISH = "h-swish where ours is ReLU6 (TFLite runs it as one more elementwise op: an upper bound for ours)"


def _unit_row(raw: str, stats: dict[str, Any], ms: float, *, fmt: str) -> _Row:
    if fmt == "ofa" and raw.split("-")[0] in ("Conv", "Conv_1"):
        stats = {**stats, "approx": HSWISH}  # kept apart from exact imports by this flag on the entry
    if m := _CONV.fullmatch(raw):
        h, w, c, oh, ow, o = _ints(m.groups())
        s = h // oh if oh and h % oh == 0 else 0
        if s not in (1, 2) or w // ow != s:
            return _Row(raw, None, ms, stats, why=f"stem {h}x{w} -> {oh}x{ow} is not stride 1 or 2")
        return _Row(raw, op_key(Op("conv", 3), (h, w, c), o, s), ms, stats)
    if m := _HEAD.fullmatch(raw):
        h, w, c, oh, ow, o = _ints(m.groups())
        if (h, w) != (oh, ow):
            return _Row(raw, None, ms, stats, why="head changes the spatial size")
        return _Row(raw, head_key((h, w, c), o), ms, stats)
    if (m := _LOGITS.fullmatch(raw)) and (fmt == "proxylessnas" or m.group(1) == m.group(2) == "1"):
        h, w, c, classes = _ints(m.groups())  # OFA's Logits runs on the pooled 1x1 map: pool is a no-op there
        return _Row(raw, classifier_key((h, w, c), classes), ms, stats)
    return _Row(raw, None, ms, stats, why="no counterpart among our units (stem, op, head, classifier, add, scale)")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise NseError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise NseError(f"{path} is not UTF-8 text") from None
    except RecursionError:
        raise NseError(f"{path} is nested too deeply") from None
    except yaml.YAMLError:
        raise NseError(f"{path} is not valid YAML") from None


def _number(path: Path, raw: Any, field: str, v: Any, *, integer: bool = False) -> float:
    """A finite value >= 0 of a source entry (a bool, string, NaN, inf or negative is an error naming it)."""
    ok = not isinstance(v, bool) and isinstance(v, int if integer else int | float)
    try:
        ok = ok and math.isfinite(v) and v >= 0
    except OverflowError:  # an int beyond float range
        ok = False
    if not ok:
        need = "an integer >= 0" if integer else "a finite number >= 0"
        raise NseError(f"{path}: entry {str(raw)!r} has {field} {v!r} (need {need})")
    return v


def _yaml_rows(path: Path, fmt: str) -> list[_Row]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise NseError(f"{path} is not a {fmt} latency table (expected a mapping of keys to mean/count)")
    rows = []
    for raw, val in data.items():
        if not isinstance(val, dict) or "mean" not in val:
            raise NseError(f"{path}: entry {str(raw)!r} has no numeric 'mean'")
        ms = float(_number(path, raw, "mean", val["mean"]))
        stats: dict[str, Any] = {"n": int(_number(path, raw, "count", val.get("count", 0), integer=True))}
        if "var" in val:
            stats["std"] = math.sqrt(_number(path, raw, "var", val["var"]))
        elif "std" in val:
            stats["std"] = float(_number(path, raw, "std", val["std"]))
        m = _BLOCK.fullmatch(str(raw))
        has_flags = bool(m and m.group(11) is not None)
        if m and has_flags == (fmt == "ofa"):
            rows.append(_block_row(str(raw), m, stats, ms, fmt=fmt))
        else:
            rows.append(_unit_row(str(raw), stats, ms, fmt=fmt))
    return rows


def _profile_rows(path: Path, profile: tuple[int, list[tuple[str, float]]] | None, arch: Arch | None) -> list[_Row]:
    from collections import defaultdict

    if profile is None:
        raise NseError("format benchmark-profile needs the parsed profile (runs, [(node type, avg ms)])")
    if arch is None:
        raise NseError("--format benchmark-profile needs the arch that was profiled (--arch FILE)")
    runs, nodes = profile
    if not nodes:
        raise NseError(f"{path} has no op-profiling 'Run Order' table (run with --enable_op_profiling=true)")
    adds = [ms for kind, ms in nodes if kind == "ADD"]
    keys = [k for c in arch_components(arch) for k, n in c.keys if k.startswith("add|") for _ in range(n)]
    if len(adds) != len(keys):
        raise NseError(f"{path} has {len(adds)} ADD nodes but the arch has {len(keys)} add units; "
                       "is it the profile of that arch?")
    by_key: dict[str, list[float]] = defaultdict(list)
    for ms, key in zip(adds, keys, strict=True):
        by_key[key].append(ms)
    return [_Row(f"ADD x{len(v)} ({key})", key, sum(v) / len(v), {"n": len(v), "runs": runs, "node_ms": v})
            for key, v in by_key.items()]


def _new_table(device: str, fmt: str, runtime: str) -> LatencyTable:
    return LatencyTable({
        "device": device, "runtime": runtime, "runtime_version": "unknown (imported)",
        "threads": 1 if fmt in ("proxylessnas", "benchmark-profile") else None, "dtype": "float32", "batch": 1,
        "statistic": "mean", "created": utc_now(),
        "tool_version": __version__, "imports": [],
    })


def _residual_entry(row: _Row, table: LatencyTable, report: ImportReport) -> tuple[float, dict[str, Any]]:
    """The op-alone latency of an idskip:1 block: minus the table's add at its shape, when there is one."""
    assert row.key is not None
    spec = parse_key(row.key)
    add = join_key("add", spec.shape)
    if add in table and not table.adds_in_ops:
        add_ms = table.ms(add)
        if add_ms > row.ms:  # the two sources disagree: a negative block would make every net look cheaper
            raise NseError(f"{row.raw}: {row.ms:.4g} ms with its residual add is less than the table's "
                           f"{add} alone ({add_ms:.4g} ms); the two sources do not fit together")
        return row.ms - add_ms, {"raw_ms": row.ms, "minus_add_ms": add_ms}
    why = "the table keeps residual adds in its ops (in-op)" if table.adds_in_ops else f"no {add} in the table"
    report.notes.append(f"{row.key}: {why}, kept with its residual add")
    return row.ms, {"includes_residual_add": True}


def import_table(path: str | Path, *, fmt: str, device: str, table: LatencyTable | None = None,
                 arch: Arch | None = None, profile: tuple[int, list[tuple[str, float]]] | None = None,
                 allow_partial: bool = False, runtime: str = "tflite") -> tuple[LatencyTable, ImportReport]:
    """Map ``path`` onto our keys, into ``table`` (merge) or a new table for ``device``.

    ``benchmark-profile`` also needs ``arch`` and ``profile`` = (timed runs, [(node type, avg ms)] in run order),
    as parsed by ``nse_hw.profilers.benchmark_model`` (the CLI does this; ``nse_hw`` does not import profilers).
    """
    if fmt not in FORMATS:
        raise NseError(f"unknown import format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    if table is not None and table.meta.get("device") != device:
        raise NseError(f"cannot merge {device!r} entries into table {table.name} of device "
                       f"{table.meta.get('device')!r}")
    rows = _profile_rows(path, profile, arch) if fmt == "benchmark-profile" else _yaml_rows(path, fmt)
    unmapped = [r for r in rows if r.key is None]
    if unmapped and not allow_partial:
        shown = "; ".join(f"{r.raw} ({r.why})" for r in unmapped[:4])
        more = f" (+{len(unmapped) - 4} more)" if len(unmapped) > 4 else ""
        raise NseError(f"{len(unmapped)} keys of {path.name} have no counterpart among our keys: {shown}{more}; "
                       "pass --allow-partial to import the rest and list these in the table")
    table = table if table is not None else _new_table(device, fmt, runtime)
    report = ImportReport(path.name, fmt, hashlib.sha256(path.read_bytes()).hexdigest(),
                          skipped={r.raw: r.why for r in unmapped})
    for row in rows:
        if row.key is None:
            continue
        if table.entries.get(row.key, {}).get("source") == "measured":
            report.skipped[row.raw] = f"{row.key} is measured in the table already"
            continue
        ms, extra = _residual_entry(row, table, report) if row.residual else (row.ms, {})
        table.set(row.key, ms=ms, source="imported", **row.stats, **extra, raw_key=row.raw, origin=path.name)
        report.imported.append(row.key)
    kept = [e for e in table.entries.values() if e.get("includes_residual_add")]
    if kept and not any("minus_add_ms" in e for e in table.entries.values()):
        table.meta["residual_add"] = "in-op"
    table.meta.setdefault("imports", []).append(report.to_dict())
    return table, report
