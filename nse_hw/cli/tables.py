"""`nse-hw tables ...`: list the tables, import public tables, transfer host tables to a device, profile a phone
over adb."""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any

import click

from nse_hw.errors import NseError
from nse_hw.paths import user_tables

log = logging.getLogger(__name__)


@click.group("tables")
def tables() -> None:
    """Device latency tables: list, import, transfer, profile a phone."""


@tables.command("list")
def list_cmd() -> None:
    """Every table a command finds by name, and the folder new tables are written to."""
    from nse_hw.latency.hosttables import peek_meta
    from nse_hw.latency.table import table_precision
    from nse_hw.paths import TABLES, table_dirs

    user = user_tables()
    click.echo(f"new tables go to: {user}  (set NSE_HW_TABLES to change)")
    seen: set[str] = set()
    for folder in table_dirs():
        click.echo(f"{'shipped' if folder == TABLES else 'yours'}: {folder}")
        for path in sorted(folder.glob("*.json")):
            meta = peek_meta(path) or {}
            shadowed = " (hidden by yours)" if path.stem in seen else ""
            seen.add(path.stem)
            what = f"{meta.get('device', '?')}, {meta.get('runtime', '?')}, {table_precision(meta)}"
            quick = ", quick" if meta.get("quick") else ""
            click.echo(f"  {path.stem:<40} {what}{quick}{shadowed}")


def _load_or_none(path: Path, *, fresh: bool) -> Any:
    from nse_hw.latency import load_table

    return load_table(path) if path.exists() and not fresh else None


@tables.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, metavar="FORMAT",
              help="proxylessnas | ofa | benchmark-profile (a benchmark_model op profile; needs --arch).")
@click.option("--device", required=True, help="Device name written into the table (e.g. pixel1).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Table to write [default: <device>-tflite.json in your table folder: `nse-hw tables list`]. "
                   "An existing table of the "
                   "same device is merged into (measured entries are never replaced).")
@click.option("--arch", "arch_file", type=click.Path(dir_okay=False), help="The arch a benchmark-profile ran.")
@click.option("--allow-partial", is_flag=True, help="Import what maps; list unmapped keys in the table meta.")
@click.option("--fresh", is_flag=True, help="Start a new table even if --out exists.")
def import_cmd(file: Path, fmt: str, device: str, out: Path | None, arch_file: str | None, allow_partial: bool,
               fresh: bool) -> None:
    """Map a public latency table FILE onto our keys (entries marked `imported`)."""
    from nse_hw.latency.importers import FORMATS, import_table
    from nse_hw.latency.lock import table_lock
    from nse_hw.space import load_arch

    if fmt not in FORMATS:
        raise NseError(f"unknown --format {fmt!r}; known: {', '.join(FORMATS)}")
    if not file.is_file():
        raise NseError(f"no such file: {file}")
    out = out or user_tables() / f"{device}-tflite.json"
    arch = load_arch(arch_file) if arch_file else None
    profile = None
    if fmt == "benchmark-profile":
        from nse_hw.profilers.benchmark_model import parse_benchmark_output

        res = parse_benchmark_output(file.read_text(errors="replace"))
        profile = (res.count, [(n.type, n.avg_ms) for n in res.nodes])
    # Load, merge and save under the table's lock: a profile writing the same table cannot lose our entries,
    # nor we its entries (its own saves merge with the file too).
    with table_lock(out):
        table, report = import_table(file, fmt=fmt, device=device, table=_load_or_none(out, fresh=fresh),
                                     arch=arch, profile=profile, allow_partial=allow_partial)
        table.save(out, replace=fresh)
    click.echo(f"imported {len(report.imported)} entries from {file.name} -> {out} "
               f"({len(table.entries)} entries in the table)")
    for raw, why in report.skipped.items():
        click.echo(f"  skipped {raw}: {why}")
    for note in report.notes:
        click.echo(f"  note: {note}")


@tables.command("transfer")
@click.option("--calibrate", "device_path", required=True, help="Device table to extend (measured/imported).")
@click.option("--from", "host_path", help="Host table whose keys (and latencies) to transfer.")
@click.option("--space", "spaces", multiple=True, help="Also predict every key of this space (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Table to write.")
@click.option("--no-shape-correction", is_flag=True, help="Use the linear model alone (no per-shape factor).")
@click.option("--allow-partial", is_flag=True,
              help="Leave out keys of a family with no entry to fit or anchor on (listed in the table meta).")
@click.option("--anchor-from", "donor_paths", multiple=True,
              help="A table of the same runtime whose entries give the anchor factor of a family this device "
                   "has no entry of (e.g. join on note10 from pixel1-tflite); repeatable, first match wins.")
def transfer_cmd(device_path: str, host_path: str | None, spaces: tuple[str, ...], out: Path,
                 no_shape_correction: bool, allow_partial: bool, donor_paths: tuple[str, ...]) -> None:
    """Fit a per-family model on the device's entries and predict every entry it lacks (`predicted`)."""
    from nse_hw.latency import load_table, space_keys
    from nse_hw.latency.lock import table_lock
    from nse_hw.latency.transfer import transfer_table
    from nse_hw.space import load_space

    host = load_table(host_path) if host_path else None
    donors = tuple(load_table(p) for p in donor_paths)
    with table_lock(out):  # --out is often the device table itself: read, fit and write it as one step
        device = load_table(device_path)
        keys = [k for s in spaces for k in space_keys(load_space(s), adds_in_ops=device.adds_in_ops)]
        table, model = transfer_table(device, host=host, keys=keys, shape_correction=not no_shape_correction,
                                      allow_partial=allow_partial, donors=donors)
        table.meta.setdefault("spaces", [])
        table.meta["spaces"] = list(dict.fromkeys(table.meta["spaces"] + list(spaces)))
        same = device.path is not None and out.exists() and device.path.resolve() == out.resolve()
        table.save(out, replace=not same)  # another --out is replaced, as before
    counts = collections.Counter(e["source"] for e in table.entries.values())
    extrapolated = sum(1 for e in table.entries.values() if e.get("extrapolated"))
    click.echo(f"{out}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + f" ({extrapolated} predictions extrapolate: see each entry's 'extrapolated')")
    for fam, u in table.meta["transfer"].get("unpredictable", {}).items():
        click.echo(f"  {fam:<10} NOT predicted: {u['keys']} keys (e.g. {u['e.g.']}): no entry to fit or anchor on; "
                   f"measure {u['measure']}")
    for fam, m in model.families.items():
        cands = "; ".join(f"{k}: {v['loo_mape']:.1f}%" for k, v in m.candidates.items())
        loo = "n/a (one entry)" if m.loo_mape is None else f"{m.loo_mape:5.1f}%, {m.loo_within_10:5.1f}% within +-10%"
        how = f"anchored on {m.anchored['on']} x{m.anchored['factor']:.3g}" if m.anchored else "fitted"
        if m.anchored and m.anchored.get("from"):
            how, loo = f"{how}, the factor of {m.anchored['from']}", "n/a (no entry on this device)"
        click.echo(f"  {fam:<10} {how} on {m.n_fit:3d}  leave-one-out MAPE {loo}  ({cands})")


def run_phone_profile(*, device: str, space: str, serial: str | None = None, out: Path | None = None,
                      benchmark_binary: Path | None = None, adb: str | None = None, cache: Path | None = None,
                      convert_cpus: set[int] | None = None, precision: str = "float32", runtime: str | None = None,
                      **ignored: Any) -> None:
    """`nse-hw profile --device <phone>`-compatible entry point (extra host-only options are ignored).

    ``runtime``: tflite (LiteRT's benchmark_model) or executorch (ExecuTorch's xnn_executor_runner); default: the
    device file's."""
    from nse_hw.profilers import phone
    from nse_hw.space import load_space

    runtime = "tflite" if runtime == "litert" else runtime  # LiteRT is TFLite's new name; the tables keep "tflite"
    if runtime is not None and runtime not in phone.PHONE_RUNTIMES:
        raise NseError(f"--runtime {runtime} is not a phone runtime; a phone runs tflite (LiteRT's benchmark_model) "
                       "or executorch (ExecuTorch's xnn_executor_runner)")
    cfg = phone.load_device_config(device)
    runtime = runtime or cfg.runtime
    unused = {k: v for k, v in ignored.items() if v is not None}
    if unused:
        log.info("phone runs take threads/warmup/runs from configs/devices/%s.yaml; ignoring %s", cfg.name,
                 ", ".join(sorted(unused)))
    if benchmark_binary is not None and not Path(benchmark_binary).is_file():
        raise NseError(f"--benchmark-binary {benchmark_binary}: no such file")
    exports = phone.executorch_exports if runtime == "executorch" else phone.litert_exports  # checks ExecuTorch
    res = phone.profile_phone(load_space(space), device_cfg=cfg, serial=serial, out=out,
                              benchmark_binary=benchmark_binary, adb=adb, runtime=runtime, precision=precision,
                              export_fn=exports(cache=cache, convert_cpus=convert_cpus, precision=precision))
    click.echo(f"measured {len(res.measured)} entries ({res.skipped} already in the table) in {res.wall_s:.0f} s "
               f"-> {res.path}")


@tables.command("profile-phone")
@click.option("--device", default="pixel", show_default=True,
              help="Device description: configs/devices/<NAME>.yaml or a YAML path.")
@click.option("--serial", help="adb serial (needed when several devices are attached).")
@click.option("--space", default="nse27-proxyless224", show_default=True, help="Search space name or YAML path.")
@click.option("--runtime", type=click.Choice(["tflite", "litert", "executorch"]),
              help="tflite (LiteRT's benchmark_model) or executorch (xnn_executor_runner) [default: the device "
                   "file's].")
@click.option("--precision", type=click.Choice(["float32", "int8"]), default="float32", show_default=True,
              help="int8: every block quantised as `nse-hw export --int8` does.")
@click.option("--benchmark-binary", type=click.Path(dir_okay=False, path_type=Path),
              help="Local benchmark_model (or with --runtime executorch xnn_executor_runner) to push; default: the "
                   "one on the phone.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Table [default: <phone-model>-tflite.json in your table folder: `nse-hw tables list`].")
@click.option("--adb", help="adb executable [default: $ADB or adb on PATH].")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), help="Export cache folder.")
@click.option("--model", "model_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Instead: time this whole .tflite with per-op profiling and print its breakdown.")
def profile_phone_cmd(model_file: Path | None, **kw: Any) -> None:
    """Measure every block of SPACE on an Android phone over adb (resumable)."""
    if model_file is not None:
        if kw["runtime"] not in (None, "tflite", "litert") or kw["precision"] != "float32":
            raise NseError("--model times a .tflite as it is: --runtime and --precision are for profiling a space")
        _profile_model(model_file, device=kw["device"], serial=kw["serial"], adb=kw["adb"],
                       benchmark_binary=kw["benchmark_binary"])
        return
    run_phone_profile(**kw)


def _profile_model(path: Path, *, device: str, serial: str | None, adb: str | None,
                   benchmark_binary: Path | None) -> None:
    from nse_hw.profilers.phone import load_device_config, profile_model

    if not path.is_file():
        raise NseError(f"--model {path}: no such file")
    res = profile_model(path, device_cfg=load_device_config(device), serial=serial, adb=adb,
                        benchmark_binary=benchmark_binary)
    by_type: dict[str, list[float]] = collections.defaultdict(list)
    for node in res.nodes:
        by_type[node.type].append(node.avg_ms)
    click.echo(f"{path.name}: {res.statistic} {res.ms:.3f} ms over {res.count} runs (std {res.std_ms:.3f} ms), "
               f"{len(res.nodes)} nodes")
    for kind, times in sorted(by_type.items(), key=lambda kv: -sum(kv[1])):
        click.echo(f"  {kind:<24} {len(times):4d} nodes  {sum(times):9.3f} ms")


COMMANDS = [tables]
