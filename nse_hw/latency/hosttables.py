"""Which host table belongs to this CPU: file names, and the default table a command should use here.

Host tables are per CPU (:mod:`nse_hw.hostcpu`). The shipped ``latency_tables/host-<runtime>[...].json`` were
measured on one CPU; a table profiled on another CPU by default goes to
``host-<runtime>[...]-<cpu id>.json`` (``-quick`` appended for ``profile --quick``), so it never mixes with the
shipped one, and commands that pick a host table by default (``export``, ``measure``) take this CPU's: a full
table before a quick one, the newest first; only when this CPU has none do they fall back to the shipped name
(and warn that it is another CPU's). Tables are looked up in the user's table folder and the shipped one
(:func:`nse_hw.paths.table_dirs`) and written to the user's (:func:`nse_hw.paths.user_tables`); ``root`` names one
folder for both instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nse_hw.hostcpu import SAME, cpu_id, cpu_status
from nse_hw.jsonio import read_json
from nse_hw.latency.table import first_in, table_kernels, table_precision
from nse_hw.paths import table_dirs, user_tables


def host_table_name(runtime: str, *, precision: str = "float32", threads: int = 1, kernels: str | None = None,
                    cpu: str | None = None, quick: bool = False) -> str:
    """``host-<runtime>[-int8][-t<threads>][-builtin][-<cpu id>][-quick]`` (a file stem)."""
    tail = ("" if precision == "float32" else f"-{precision}") + ("" if threads == 1 else f"-t{threads}")
    tail += "" if kernels in (None, "xnnpack") else f"-{kernels}"
    return f"host-{runtime}{tail}" + (f"-{cpu}" if cpu else "") + ("-quick" if quick else "")


def _dirs(root: Path | None) -> list[Path]:
    return [root] if root is not None else table_dirs()


def peek_meta(path: Path) -> dict[str, Any] | None:
    try:
        d = read_json(path, what="latency table")
    except (OSError, ValueError):
        return None
    meta = d.get("meta") if isinstance(d, dict) else None
    return meta if isinstance(meta, dict) else None


def _fits(meta: dict[str, Any], runtime: str, precision: str, threads: int, kernels: str | None) -> bool:
    want = kernels if runtime == "litert" else None
    return (meta.get("device") == "host" and meta.get("runtime") == runtime and meta.get("threads") == threads
            and table_precision(meta) == precision and table_kernels(meta) == (want or table_kernels(meta)))


def tables_of_cpu(here: dict[str, Any], *, runtime: str, precision: str = "float32", threads: int = 1,
                  kernels: str | None = "xnnpack", root: Path | None = None) -> list[Path]:
    """Host tables (in ``root`` if given) measured on this CPU with this runtime, precision, threads and kernels: full
    tables before quick ones, newest first."""
    found: list[tuple[bool, str, Path]] = []
    for path in (p for d in _dirs(root) for p in sorted(d.glob("host-*.json"))):
        meta = peek_meta(path)
        if meta and _fits(meta, runtime, precision, threads, kernels) and cpu_status(meta, here) == SAME:
            found.append((bool(meta.get("quick")), str(meta.get("created") or ""), path))
    found.sort(key=lambda t: t[1], reverse=True)  # newest created first ...
    found.sort(key=lambda t: t[0])  # ... and full tables before quick ones (a stable sort keeps that order)
    return [p for _, _, p in found]


def default_host_table(here: dict[str, Any], *, runtime: str, precision: str = "float32", threads: int = 1,
                       kernels: str | None = "xnnpack", root: Path | None = None) -> Path:
    """This CPU's table if there is one, else the shipped name (which may be another CPU's: callers warn)."""
    mine = tables_of_cpu(here, runtime=runtime, precision=precision, threads=threads, kernels=kernels, root=root)
    name = host_table_name(runtime, precision=precision, threads=threads, kernels=kernels)
    return mine[0] if mine else first_in(_dirs(root), f"{name}.json")


def default_profile_out(here: dict[str, Any], *, runtime: str, precision: str = "float32", threads: int = 1,
                        kernels: str | None = "xnnpack", quick: bool = False, root: Path | None = None) -> Path:
    """Where ``profile`` writes by default: the shipped name while it is absent or this CPU's; otherwise (and
    always for ``--quick``) a name of this CPU's own."""
    kw = {"precision": precision, "threads": threads, "kernels": kernels}
    out_dir = root if root is not None else user_tables()
    if quick:
        return out_dir / f"{host_table_name(runtime, **kw, cpu=cpu_id(here), quick=True)}.json"
    shipped = first_in(_dirs(root), f"{host_table_name(runtime, **kw)}.json")
    meta = peek_meta(shipped) if shipped.exists() else None
    if meta is None or cpu_status(meta, here) == SAME:
        return out_dir / shipped.name
    return out_dir / f"{host_table_name(runtime, **kw, cpu=cpu_id(here))}.json"
