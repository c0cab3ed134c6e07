"""`nse-hw profile`: measure every block of a search space on a device and write its latency table."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nse_hw.cli.common import positive_threads
from nse_hw.cli.precision import precision_option
from nse_hw.errors import NseError


def parse_cpus(ctx: click.Context, param: click.Parameter, value: str | None) -> set[int] | None:
    """``--convert-cpus``: ``0,2-3`` -> {0, 2, 3}; ``none`` -> set() (convert before timing); unset -> auto."""
    if value is None:
        return None
    if value.strip().lower() == "none":
        return set()
    try:
        cpus: set[int] = set()
        for part in value.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise click.BadParameter(f"expected core numbers like '0' or '0,2-3' or 'none', got {value!r}") from None
    return cpus


def convert_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--cache and --convert-cpus, shared with `latency validate/calibrate`."""
    fn = click.option("--convert-cpus", callback=parse_cpus, metavar="CPUS",
                      help="Cores for the converter process, which then runs ahead of timing (e.g. '0'); 'none' "
                           "converts everything before timing. Default: the cores this process is not pinned to.")(fn)
    return click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
                        help="Export cache folder [default: $NSE_HW_CACHE or ~/.cache/nse-hw/exports].")(fn)


FULL_RUNS = 200  # a full profile's timed runs per entry


def default_runs(out: Path, *, quick: bool) -> int:
    """Timed runs per entry when --runs is not given: an existing table's own (extending a --quick table with
    an --arch's units keeps its settings), else FULL_RUNS, or --quick's fewer (its 3-minute budget)."""
    from nse_hw.latency import load_table
    from nse_hw.profilers.quick import QUICK_RUNS

    if out.is_file():
        with contextlib.suppress(NseError, OSError, ValueError):  # unreadable: refused with its own error later
            runs = load_table(out).meta.get("runs")
            if isinstance(runs, int) and runs > 0:
                return runs
    return QUICK_RUNS if quick else FULL_RUNS


def _profile_host(*, runtime: str | None, space: str | None, archs: tuple[Path, ...], threads: int,
                  out: Path | None, precision: str, kernels: str, quick: bool, reference: str | None,
                  **kw: Any) -> None:
    from nse_hw.cli.common import read_arch
    from nse_hw.hostcpu import this_cpu
    from nse_hw.latency.hosttables import default_profile_out
    from nse_hw.profilers.host import check_kernels
    from nse_hw.profilers.table_builder import profile_host
    from nse_hw.space import load_space

    if runtime is None:
        raise NseError("--device host needs --runtime (litert or onnxruntime)")
    check_kernels(kernels, runtime)
    if quick and (archs or not space):
        raise NseError("--quick profiles a --space (a measured subset, the rest predicted); --arch needs the full "
                       "profile")
    if reference and not quick:
        raise NseError("--reference is the table --quick predicts from; it needs --quick")
    sp = load_space(space) if space else None
    out = out or default_profile_out(this_cpu(), runtime=runtime, precision=precision, threads=threads,
                                     kernels=kernels if runtime == "litert" else None, quick=quick)
    ref = (str(Path(space).resolve()) if Path(space).suffix else space) if space else None  # validate loads it so
    kw["runs"] = kw["runs"] or default_runs(out, quick=quick)
    if quick:
        from nse_hw.profilers.quick import profile_quick

        assert sp is not None
        q = profile_quick(sp, runtime=runtime, threads=threads, out=out, space_ref=ref, precision=precision,
                          kernels=kernels, reference=Path(reference) if reference else None, **kw)
        click.echo(f"quick table: measured {q.measured} entries this run, predicted {q.predicted} from the reference, "
                   f"checked on {q.calibration['n']} whole networks (LUT sums {q.calibration['raw_mape']:.2f}% off, "
                   f"uncorrected) in {q.wall_s:.0f} s -> {q.path}; judge it with: nse-hw latency validate --table "
                   f"{q.path} --samples 50 --seed 0")
        return
    nets = tuple((str(Path(a).resolve()), read_arch(a)) for a in archs)
    res = profile_host(sp, runtime=runtime, threads=threads, out=out, space_ref=ref, precision=precision,
                       archs=nets, kernels=kernels, **kw)
    click.echo(f"measured {res.measured} entries ({res.skipped} already in the table) in {res.wall_s:.0f} s "
               f"-> {res.path}")


def _profile_phone(*, device: str, **kw: Any) -> None:
    from nse_hw.cli.tables import run_phone_profile  # adb profiling: configs/devices/<device>.yaml

    run_phone_profile(device=device, **kw)  # threads and the big-core mask: from the device file


@click.command("profile")
@click.option("--device", default="host", show_default=True,
              help="host, or a phone described in configs/devices/<NAME>.yaml (e.g. pixel), measured over adb.")
@click.option("--runtime", help="Host: litert (.tflite, XNNPACK), onnxruntime (.onnx) or executorch (.pte, "
                                "XNNPACK). Phone: tflite (LiteRT's benchmark_model) [default] or executorch "
                                "(ExecuTorch's xnn_executor_runner).")
@click.option("--space", help="Search space name (configs/spaces) or YAML path: every block it can use.")
@click.option("--arch", "archs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Host: an arch file (any network of the grammar, at its own input size and widths): the units "
                   "it needs that the table lacks. Repeatable; may be given with or without --space.")
@click.option("--threads", type=int, default=1, show_default=True, callback=positive_threads)
@precision_option(default="float32", show_default=True,
                  help="float32, or int8: every block quantised as `nse-hw export --int8` does (LiteRT; "
                       "XNNPACKQuantizer for executorch).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Table to write or extend [default: <device>-<runtime>[-int8][-t<threads>].json in your table "
                   "folder (`nse-hw tables list`); "
                   "on a host whose CPU is not the shipped table's, and with --quick, a name with this CPU's id].")
@click.option("--kernels", type=click.Choice(["xnnpack", "builtin"]), default="xnnpack", show_default=True,
              help="Host LiteRT: the XNNPACK delegate (LiteRT's default) or TFLite's builtin kernels "
                   "(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES); recorded as meta.kernels.")
@click.option("--quick", is_flag=True,
              help="Host: measure a stratified fifth of the space and a few whole networks, predict the rest from "
                   "the shipped table of the runtime (host-to-host transfer): this CPU's table in minutes, marked "
                   "meta.quick.")
@click.option("--reference", help="With --quick: the full host table to predict from [default: the shipped one].")
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True, help="Untimed runs first.")
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Timed runs per entry [default: 200; with --quick 100].")
@click.option("--cpu-cache", type=click.Choice(["evicted", "warm"]), default="evicted", show_default=True,
              help="evicted: time each block as inside a network (CPU caches evicted, input fresh); "
                   "warm: back to back.")
@click.option("--speed-probe/--no-speed-probe", default=True, show_default=True,
              help="Host: re-time one fixed block every ~10 s and put every entry on one scale, so a slow spell of "
                   "the machine (a VM whose speed moves) does not end up in some entries only; ~10% more time.")
@click.option("--serial", help="Phone: adb serial (needed when several devices are attached).")
@click.option("--benchmark-binary", type=click.Path(dir_okay=False, path_type=Path),
              help="Phone: the binary to push when the phone has none: LiteRT's benchmark_model, or with "
                   "--runtime executorch ExecuTorch's xnn_executor_runner (Android arm64 builds).")
@click.option("--adb", help="Phone: the adb executable [default: adb on PATH].")
@convert_options
def profile(device: str, serial: str | None, benchmark_binary: Path | None, adb: str | None, **kw: Any) -> None:
    """Measure every block SPACE can use (or the ARCH networks need) and write (or resume) the latency table.

    Entries already in the table are skipped; the table is saved as it fills (every ~10 s with the host's
    speed probe, else after every entry).
    """
    if not kw["space"] and not kw["archs"]:
        raise NseError("give --space SPACE (every block a search space can use) or --arch FILE (one network's)")
    if device == "host":
        if serial or benchmark_binary or adb:
            raise NseError("--serial, --benchmark-binary and --adb are for phones, not --device host")
        _profile_host(**kw)
    else:
        if kw.pop("quick") or kw.pop("reference") or kw.pop("kernels") != "xnnpack" or not kw.pop("speed_probe"):
            raise NseError("--quick, --reference, --kernels and --no-speed-probe are for --device host")
        if kw.pop("archs"):
            raise NseError("--arch is for --device host; a phone profiles a --space (or predict with "
                           "nse-hw latency predict ARCH --device PHONE)")
        _profile_phone(device=device, serial=serial, benchmark_binary=benchmark_binary, adb=adb,
                       **{**kw, "runs": kw["runs"] or FULL_RUNS})


COMMANDS = [profile]
