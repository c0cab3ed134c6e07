"""`nse-hw latency validate` and `nse-hw latency calibrate`: whole networks measured against a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nse_hw.atomic import atomic_write_json
from nse_hw.cli.common import echo_json, positive_threads, read_arch, warn_other_cpu
from nse_hw.cli.common import other_cpu_warning as other_cpu_warning_text
from nse_hw.cli.precision import precision_option
from nse_hw.cli.profile import convert_options
from nse_hw.errors import NseError
from nse_hw.latency import load_table

DEFAULT_CAL_SEED = 1000


def _timing_options(fn: Any) -> Any:
    fn = precision_option(help="Refuse a table of another precision (float32 or int8) [default: any].")(fn)
    fn = click.option("--threads", "want_threads", type=int, callback=positive_threads, metavar="N",
                      help="Refuse a table measured with another thread count [default: any].")(fn)
    fn = click.option("--rounds", type=click.IntRange(min=1), default=4, show_default=True,
                      help="Split the runs into rounds over all networks (evens out slow spells).")(fn)
    fn = click.option("--runs", type=click.IntRange(min=1), help="Timed runs per network [default: the table's].")(fn)
    fn = click.option("--warmup", type=click.IntRange(min=0), help="Untimed runs first [default: the table's].")(fn)
    return click.option("--space", help="Space to draw networks from [default: the table's].")(fn)


def _bench(table: Any, kw: dict[str, Any]) -> Any:
    from nse_hw.profilers.netbench import Bench

    m = table.meta
    return Bench.for_table(table, warmup=kw["warmup"] if kw["warmup"] is not None else m.get("warmup"),
                           runs=kw["runs"] or m.get("runs"), rounds=kw["rounds"], cache=kw["cache"],
                           convert_cpus=kw["convert_cpus"])


@click.command("validate")
@click.option("--table", "table_path", required=True, help="Table path or shipped name (e.g. host-litert).")
@click.option("--samples", type=click.IntRange(min=0), default=0, help="Random networks from the table's space.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random networks.")
@click.option("--arch", "arch_files", multiple=True, type=click.Path(dir_okay=False), help="Arch file (repeatable).")
@_timing_options
@convert_options
@click.option("--recheck/--no-recheck", default=True, show_default=True,
              help="First re-time up to 4 of the networks the table was calibrated (or checked) on, and warn if "
                   "this machine has drifted by more than 5% since (a host table of this CPU that stores them).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write a predicted-vs-measured PNG.")
@click.option("--out-json", type=click.Path(dir_okay=False, path_type=Path), help="Write the full report here.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def validate_cmd(table_path: str, samples: int, seed: int, arch_files: tuple[str, ...], recheck: bool,
                 plot: Path | None, out_json: Path | None, as_json: bool, **kw: Any) -> None:
    """Measure whole networks with the table's runtime and threads; compare with the table's predictions."""
    from nse_hw.profilers.netbench import drift_message, plot_validation, sample_archs, table_space, validate
    from nse_hw.profilers.netbench import recheck as recheck_drift
    from nse_hw.profilers.table_builder import check_writable

    table = load_table(table_path, precision=kw["precision"], threads=kw["want_threads"])
    cal = table.meta.get("calibration")
    if cal and samples and seed == cal.get("seed"):
        raise NseError(f"seed {seed} drew the networks the calibration was fitted on; validate with another --seed")
    if warn_other_cpu(table):  # still worth running: it measures how far that CPU's table is off here
        click.echo("note: validating measures how well that table predicts this CPU", err=True)
    bench = _bench(table, kw)
    archs = [read_arch(f) for f in arch_files]
    labels = list(arch_files)
    if samples:
        archs += sample_archs(table_space(table, kw["space"]), samples=samples, seed=seed)
        labels += [f"seed{seed}#{i}" for i in range(samples)]
    for path in (p for p in (plot, out_json) if p):
        check_writable(path)
    drift = recheck_drift(table, cache=kw["cache"], convert_cpus=kw["convert_cpus"]) if recheck else None
    if drift:
        click.echo(("warning: " if drift["drifted"] else "") + drift_message(drift), err=True)
    report = validate(table, archs, bench, labels=labels) | {"seed": seed if samples else None, "samples": samples,
                                                             "drift": drift}
    if out_json:
        atomic_write_json(out_json, report)
    if plot:
        plot_validation(report, plot)
    if as_json:
        echo_json(report)
    else:
        _echo_report(report)


def _echo_report(report: dict[str, Any]) -> None:
    if sp := report.get("speed"):
        click.echo(f"speed probe: this machine took {sp['probe_ratio']:.2f}x the probe's time at the table's build; "
                   "measured times are on the table's scale ('as_timed': the same predictions against the times as "
                   "taken)")
    for r in report["archs"]:
        cal = f"  cal {r['calibrated_ms']:8.3f} ({r['err_pct_calibrated']:+5.1f}%)" if r["calibrated_ms"] else ""
        click.echo(f"{r['label'] or r['arch']:<12} measured {r['measured_ms']:8.3f} ms  LUT {r['lut_sum_ms']:8.3f} "
                   f"({r['err_pct_raw']:+5.1f}%){cal}")
    for kind, s in report["summary"].items():
        if s:
            click.echo(f"{kind:<10} n={s['n']} within ±10%: {100 * s['within_10pct']:.0f}%  MAPE {s['mape']:.2f}%  "
                       f"worst {s['max_abs_pct_err']:.1f}%  bias {s['bias_pct']:+.2f}% ({s['bias_ms']:+.3f} ms)")


@click.command("calibrate")
@click.option("--table", "table_path", required=True, help="Table path or shipped name; its meta is updated.")
@click.option("--samples", type=click.IntRange(min=3), default=16, show_default=True,
              help="Random networks to measure and fit on.")
@click.option("--seed", type=int, default=DEFAULT_CAL_SEED, show_default=True, help="Seed of the random networks.")
@_timing_options
@convert_options
@click.option("--json", "as_json", is_flag=True, help="Print the stored calibration as JSON.")
def calibrate_cmd(table_path: str, samples: int, seed: int, as_json: bool, **kw: Any) -> None:
    """Fit total = slope * LUT sum + intercept on measured whole networks; store it in the table's meta."""
    from nse_hw.profilers.netbench import fit_calibration, sample_archs, table_space
    from nse_hw.profilers.table_builder import check_writable

    table = load_table(table_path, precision=kw["precision"], threads=kw["want_threads"])
    assert table.path is not None
    check_writable(table.path)
    from nse_hw.hostcpu import OTHER, cpu_status, this_cpu

    if cpu_status(table.meta, this_cpu()) == OTHER:  # a calibration fitted here would mix two CPUs in one table
        raise NseError(f"refusing to calibrate: {other_cpu_warning_text(table)}")
    bench = _bench(table, kw)
    space = table_space(table, kw["space"])
    cal = fit_calibration(table, sample_archs(space, samples=samples, seed=seed), bench, seed=seed, space=space.name)
    if as_json:
        echo_json(cal)
        return
    click.echo(f"calibration of {table.path}: total = {cal['slope']:.4f} * LUT sum {cal['intercept_ms']:+.3f} ms "
               f"(n={cal['n']}, seed {seed}); raw MAPE {cal['raw_mape']:.2f}% (bias {cal['raw_bias_pct']:+.2f}%), "
               f"leave-one-out MAPE {cal['loo_mape']:.2f}% (worst {cal['loo_max_abs_pct_err']:.1f}%)")
