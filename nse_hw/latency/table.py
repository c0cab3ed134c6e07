"""Latency lookup tables: one JSON file per device x runtime, with provenance, written atomically.

    {"format": "nse-hw/latency-table/1",
     "meta": {"device": "host", "runtime": "litert", "runtime_version": ..., "threads": 1, "dtype": "float32",
              "batch": 1, "statistic": "median", "warmup": ..., "runs": ..., "created": ..., "host": {...},
              "tool_version": ..., "space": ..., "calibration": {"slope": a, "intercept_ms": b, ...}},
     "entries": {"mb_k5_e6|in=56x56x24|out=40|s=2": {"ms": ..., "p10": ..., "p90": ..., "n": ..., "source": ...}}}

A miss is a :class:`LatencyMiss` naming the key and the command that fills it, never a default. Every entry is
checked on load, on :meth:`LatencyTable.set` and on save: a negative or NaN latency would silently make a net
look cheaper (a stem at -500 ms let a ~574 ms net pass an 80 ms budget).

Several processes may write one table (a running ``profile``, ``tables import``, ``latency calibrate``): every
write holds an exclusive lock (:func:`nse_hw.latency.lock.table_lock`) and merges with what is on disk
(:func:`merge_tables`), so no writer's entries are lost to another's stale in-memory copy.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nse_hw.atomic import atomic_write_json
from nse_hw.errors import LatencyMiss, NseError
from nse_hw.jsonio import MAX_DEPTH, nesting_depth, read_json
from nse_hw.latency.lock import table_lock
from nse_hw.paths import table_dirs


def utc_now() -> str:
    """The time stamps of table provenance: UTC, to the second, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


TABLE_FORMAT = "nse-hw/latency-table/1"
SOURCES = ("measured", "imported", "predicted")  # also the rank on a write conflict, strongest first
DEPLOY_RUNTIMES = ("litert", "tflite")  # a device with several tables: its TFLite-family one is the default
_STATS = ("p10", "p90", "p5", "p95", "avg", "std", "min", "max", "raw_ms", "minus_add_ms")  # ms, all optional
_IDENTITY = ("device", "runtime", "threads", "dtype")  # a table that differs here is another table: never merged
PRECISIONS = ("float32", "int8")  # what a table's entries were measured in (meta.precision; older tables: dtype)


# --- checks -------------------------------------------------------------------------------------------------

def _real(v: Any) -> bool:
    """A finite int or float; bool is an int to Python but never a latency."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float range
        return False


def _ms_like(v: Any) -> bool:
    return _real(v) and v >= 0


def entry_problem(e: Any) -> str | None:
    """Why ``e`` cannot be a table entry (one phrase), or None."""
    if not isinstance(e, dict):
        return f"is {type(e).__name__}, not an object"
    if not _ms_like(e.get("ms")):
        return f"has ms {e.get('ms')!r} (need a finite number >= 0)"
    for k in _STATS:
        if k in e and e[k] is not None and not _ms_like(e[k]):
            return f"has {k} {e[k]!r} (need a finite number >= 0)"
    if _ms_like(e.get("p10")) and _ms_like(e.get("p90")) and not e["p10"] <= e["ms"] <= e["p90"]:
        return f"has p10 {e['p10']} <= ms {e['ms']} <= p90 {e['p90']} false"
    n = e.get("n")
    if "n" in e and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        return f"has n {n!r} (need an integer >= 0)"
    if e.get("source") not in SOURCES:
        return f"has source {e.get('source')!r} (need one of {', '.join(SOURCES)})"
    return None


def _int_at_least(lo: int) -> Any:
    return lambda v: not isinstance(v, bool) and isinstance(v, int) and v >= lo


_META_CHECKS: dict[str, tuple[Any, str]] = {
    "device": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "runtime": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "threads": (lambda v: v is None or _int_at_least(1)(v), "an integer >= 1 or null"),
    "batch": (_int_at_least(1), "an integer >= 1"),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
    "warmup": (_int_at_least(0), "an integer >= 0"),
    "runs": (_int_at_least(1), "an integer >= 1"),
    "spaces": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of strings"),
    "imports": (lambda v: isinstance(v, list), "a list"),
    "transfer": (lambda v: v is None or isinstance(v, dict), "an object"),
    "invoke_overhead": (lambda v: isinstance(v, dict) and _ms_like(v.get("ms")), "an object with ms >= 0"),
    "calibration": (lambda v: v is None or v == {} or (isinstance(v, dict) and _real(v.get("slope"))
                                                      and v["slope"] > 0 and _real(v.get("intercept_ms"))),
                    "an object with a finite slope > 0 and intercept_ms"),
    "residual_add": (lambda v: v in ("in-op", "separate"), "'in-op' or 'separate'"),
    "setup": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"] != "",
              "an object with a non-empty name"),
    "setups": (lambda v: isinstance(v, dict) and all(_setup_map_ok(m) for m in v.values()),
               "an object of setup maps, each {map: {form, coef: finite numbers >= 0}}"),
}


def _setup_map_ok(entry: Any) -> bool:
    """A stored map to another setup (nse_hw.latency.setup.SetupMap) has a known form and usable coefficients."""
    m = entry.get("map") if isinstance(entry, dict) else None
    coef = m.get("coef") if isinstance(m, dict) else None
    return (isinstance(coef, dict) and m.get("form") in ("constant", "parts", "parts+weights") and bool(coef)
            and all(_ms_like(c) for c in coef.values()))


def table_problem(meta: Any, entries: Any) -> str | None:
    """Why (meta, entries) is not a valid table (one phrase naming the key), or None."""
    if not isinstance(meta, dict) or not isinstance(entries, dict):
        return "needs 'meta' and 'entries' objects"
    if nesting_depth(meta) > MAX_DEPTH or nesting_depth(entries) > MAX_DEPTH:  # tables built in memory
        return f"is nested deeper than {MAX_DEPTH} levels"
    for key, (ok, need) in _META_CHECKS.items():
        if key in meta and not ok(meta[key]):
            return f"meta {key!r} is {meta[key]!r} (need {need})"
    for key, e in entries.items():
        if why := entry_problem(e):
            return f"entry {key!r} {why}"
    return None


# --- the table ----------------------------------------------------------------------------------------------

@dataclass
class LatencyTable:
    meta: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None
    # What the file at ``path`` held when this copy was read or last written: a save merges only what this
    # copy changed since then (see merge_tables).
    base: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return str(self.path) if self.path else f"{self.meta.get('device')}-{self.meta.get('runtime')}"

    def fill_hint(self) -> str:
        m = self.meta
        if m.get("device") == "host":
            return (f"nse-hw profile --device host --runtime {m.get('runtime')} --threads {m.get('threads')} "
                    f"(--space SPACE or --arch ARCH) --out {self.path or 'TABLE'}")
        return f"nse-hw profile --device {m.get('device')} --space SPACE (or nse-hw tables transfer)"

    @property
    def adds_in_ops(self) -> bool:
        """Its ops at identity shapes were timed with their residual add (``meta.residual_add: in-op``)."""
        return self.meta.get("residual_add") == "in-op"

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
        entry = {"ms": float(ms) if _real(ms) else ms, **stats, "source": source}
        if why := entry_problem(entry):
            raise NseError(f"latency table {self.name}: entry {key!r} {why}")
        self.entries[key] = entry

    def to_dict(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, "meta": self.meta, "entries": self.entries}

    def save(self, path: str | Path | None = None, *, replace: bool = False) -> Path:
        """Write the table atomically, under its lock, merged with what the file holds now (unless ``replace``).

        Afterwards this copy holds the merged table, entries other writers added included.
        """
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("table has no path to save to")
        with table_lock(target):
            meta, entries = self.meta, self.entries
            if not replace and target.exists():
                disk = load_table(target)
                base = self.base if self.path is not None and _same_file(self.path, target) else None
                meta, entries = merge_tables(disk, self, base)
            if why := table_problem(meta, entries):
                raise NseError(f"latency table {target}: {why}; not written")
            atomic_write_json(target, {"format": TABLE_FORMAT, "meta": meta, "entries": entries})
        self.meta, self.entries, self.path = meta, entries, target
        self.base = _snapshot(meta, entries)
        return target


def _snapshot(meta: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({"meta": meta, "entries": entries})


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


# --- concurrent writers -------------------------------------------------------------------------------------

def _rank(entry: dict[str, Any]) -> int:
    return -SOURCES.index(entry["source"]) if entry.get("source") in SOURCES else -len(SOURCES)


def merge_entries(disk: dict[str, Any], mine: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Disk's entries plus the ones ``mine`` added or changed since ``base`` (what both read).

    A key changed both on disk and here: the stronger source wins (measured > imported > predicted), so an
    import racing with a profile never replaces a measurement; on a tie, this write (the newer one) wins.
    Entries are never dropped by a merge: an entry only here (even unchanged) is kept.
    """
    out = dict(disk)
    for key, e in mine.items():
        theirs = disk.get(key)
        if theirs is None or theirs == e:
            out[key] = e
        elif base.get(key) == e:
            continue  # untouched here, changed there: theirs
        elif base.get(key) == theirs or _rank(e) >= _rank(theirs):
            out[key] = e
    return out


def merge_meta(disk: dict[str, Any], mine: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Disk's meta with the fields ``mine`` changed since ``base``; lists (spaces, imports) are unioned."""
    out = dict(disk)
    for key, v in mine.items():
        if key in base and base[key] == v:
            continue
        if isinstance(v, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [x for x in v if x not in out[key]]
        else:
            out[key] = v
    for key in base.keys() - mine.keys():  # removed here (e.g. a calibration dropped), untouched there
        if out.get(key) == base[key]:
            out.pop(key, None)
    return out


def merge_tables(disk: LatencyTable, mine: LatencyTable, base: dict[str, Any] | None
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, entries) of ``mine`` written over ``disk``; ``base`` is what ``mine`` was read as (None: new)."""
    clash = [k for k in _IDENTITY if k in disk.meta and k in mine.meta and disk.meta[k] != mine.meta[k]]
    if clash:
        k = clash[0]
        raise NseError(f"latency table {disk.name} now holds {k}={disk.meta[k]!r}, not {mine.meta[k]!r}: another "
                       "table was written there meanwhile; not merging (use another --out)")
    base = base or {"meta": {}, "entries": {}}
    return merge_meta(disk.meta, mine.meta, base["meta"]), merge_entries(disk.entries, mine.entries, base["entries"])


# --- files --------------------------------------------------------------------------------------------------

def first_in(dirs: list[Path], name: str) -> Path:
    """``name`` in the first of ``dirs`` that holds it (the user's table folder before the shipped one), else in
    the last of them."""
    hits = [d / name for d in dirs]
    return next((p for p in hits if p.is_file()), hits[-1])


def resolve_table_path(name_or_path: str | Path) -> Path:
    """A path as given, or a table by name (``host-litert`` -> host-litert.json in the user's table folder if it
    holds one, else the shipped one: :func:`nse_hw.paths.table_dirs`)."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        return path
    return first_in(table_dirs(), f"{name_or_path}.json")


def known_tables() -> list[str]:
    """The names of every table in the user's folder and the shipped one."""
    return sorted({p.stem for d in table_dirs() for p in d.glob("*.json")})


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise NseError(f"no latency table at {path} (tables by name: {', '.join(known_tables()) or 'none'})")
    if path.is_dir():
        raise NseError(f"latency table {path} is a directory")
    try:  # the shared reader: not UTF-8, not JSON, NaN/Infinity, too deep or too big is one line naming the file
        return read_json(path, what="latency table")
    except ValueError as exc:
        raise NseError(str(exc)) from None


def check_precision(precision: str) -> str:
    """``precision`` if it is one a table can have, else an error listing them."""
    if precision not in PRECISIONS:
        raise NseError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


def table_precision(meta: dict[str, Any]) -> str:
    """What the table's entries were measured in: ``meta.precision``, else ``meta.dtype`` (older tables), else
    float32 (every table before int8 tables existed)."""
    return str(meta.get("precision") or meta.get("dtype") or "float32")


def table_kernels(meta: dict[str, Any]) -> str | None:
    """LiteRT's kernel path the table was timed with (``meta.kernels``; LiteRT tables before it: ``xnnpack``,
    the default op resolver); None for other runtimes."""
    if meta.get("kernels"):
        return str(meta["kernels"])
    return "xnnpack" if meta.get("runtime") == "litert" else None


def check_table(table: LatencyTable, *, precision: str | None = None, threads: int | None = None) -> LatencyTable:
    """Refuse a table measured in another precision or with another thread count than asked (None: any)."""
    if precision is not None and table_precision(table.meta) != check_precision(precision):
        raise NseError(f"latency table {table.name} holds {table_precision(table.meta)} latencies, not {precision}; "
                       f"build one with: nse-hw profile ... --precision {precision}")
    if threads is not None and table.meta.get("threads") != threads:
        raise NseError(f"latency table {table.name} was measured with {table.meta.get('threads')} thread(s), not "
                       f"{threads}; build one with: nse-hw profile ... --threads {threads}")
    return table


def load_table(path: str | Path, *, runtime: str | None = None, precision: str | None = None,
               threads: int | None = None) -> LatencyTable:
    """Load and check a table; every problem is an :class:`NseError` naming the file (and the key).

    ``runtime``, ``precision``, ``threads``: refuse a table measured otherwise (None: any).
    """
    path = resolve_table_path(path)
    d = _read_json(path)
    if not isinstance(d, dict):
        raise NseError(f"latency table {path} is corrupt (a JSON {type(d).__name__}, not an object)")
    if d.get("format") != TABLE_FORMAT:
        raise NseError(f"latency table {path} has format {d.get('format')!r}, expected {TABLE_FORMAT!r}")
    meta, entries = d.get("meta"), d.get("entries")
    if why := table_problem(meta, entries):
        raise NseError(f"latency table {path} is corrupt: {why}")
    if runtime is not None and meta.get("runtime") != runtime:
        raise NseError(f"latency table {path} was measured with runtime {meta.get('runtime')!r}, not {runtime!r}")
    if table_precision(meta) not in PRECISIONS:
        raise NseError(f"latency table {path} has precision {table_precision(meta)!r} (need one of "
                       f"{', '.join(PRECISIONS)})")
    return check_table(LatencyTable(meta, entries, path, _snapshot(meta, entries)), precision=precision,
                       threads=threads)


def table_for_device(device: str, *, precision: str = "float32") -> Path:
    """The table of ``device``: <device>-<runtime>.json, the TFLite-family runtime's when the device has several;
    for int8, <device>-<runtime>-int8.json. The user's table folder is searched before the shipped tables
    (:func:`nse_hw.paths.table_dirs`), so a table a user profiled or imported takes precedence."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", device):
        raise NseError(f"malformed device name {device!r}")
    where = " or ".join(str(d) for d in table_dirs())
    if check_precision(precision) != "float32":
        names = [f"{device}-{rt}-{precision}.json" for rt in DEPLOY_RUNTIMES]
        if found_p := [d / n for d in table_dirs() for n in names if (d / n).exists()]:
            return found_p[0]
        raise NseError(f"no {precision} latency table for device {device!r} in {where} (looked for "
                       f"{', '.join(names)}); measure one with: nse-hw profile --device {device} "
                       f"--precision {precision}  (or pass --table PATH)")
    for folder in table_dirs():
        found = sorted(folder.glob(f"{device}-*.json"))
        if not found:
            continue
        preferred = [p for rt in DEPLOY_RUNTIMES for p in found if p.stem == f"{device}-{rt}"]
        if preferred:
            return preferred[0]
        if len(found) > 1:
            names_ = ", ".join(p.name for p in found)
            raise NseError(f"device {device!r} has several tables ({names_}); choose one with --table PATH")
        return found[0]
    raise NseError(f"no latency table for device {device!r} in {where}; measure one with: "
                   f"nse-hw profile --device {device}  (or pass --table PATH)")
