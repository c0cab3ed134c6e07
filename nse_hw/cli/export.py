"""`nse-hw export` (verified .tflite/.onnx + model card) and `nse-hw measure` (end-to-end latency vs table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nse_hw.cli.common import echo_json, positive_threads, read_arch, threads_option, warn_other_cpu
from nse_hw.cli.precision import precision_option
from nse_hw.errors import NseError
from nse_hw.export.card import signed_error_pct
from nse_hw.export.ship import EXTRA_FORMATS, FORMATS, RUNTIME_FORMAT, ExportOptions, export_checkpoint
from nse_hw.latency import load_table, predict
from nse_hw.latency.table import table_precision
from nse_hw.profilers.runtimes import HostAdapter
from nse_hw.train.threads import usable_cores

SUFFIX_RUNTIME = {f".{fmt}": rt for rt, fmt in RUNTIME_FORMAT.items()}


def _fmt_ms(t: dict[str, Any]) -> str:
    return f"{t['ms']:.3f} ms [p10 {t['p10']:.3f}, p90 {t['p90']:.3f}, n={t['n']}]"


def _cpu_tag(section: dict[str, Any]) -> str:
    """`` (this CPU's)`` / `` (ANOTHER CPU's table: see the warning)``, from the card's cpu_match."""
    match = section.get("cpu_match")
    quick = " quick" if section.get("table_meta", {}).get("quick") else ""
    return {"same": f" (this CPU's{quick} table)", "other": " (ANOTHER CPU's table: see the warning)",
            "unknown": " (a table that does not record its CPU: see the warning)"}.get(match, "")


def _echo_summary(card: dict[str, Any], out: Path) -> None:
    for name, f in card["files"].items():
        v = f.get("verification_vs_pytorch")
        line = f"{name:<34} {f['bytes'] / 1024:8.1f} KiB  {_fmt_ms(f['latency_host'])}"
        if v:
            top1 = f", top-1 {100 * v['top1_file']:.2f}%" if v["top1_file"] is not None else ""
            line += f"  max|diff| {v['max_abs_diff']:.1e}, agree {100 * v['top1_agreement']:.2f}%{top1}"
        if r := f.get("vs_float_tflite") or f.get("vs_float_pte"):
            drop = f"drop {r['top1_drop_points']:.2f} pt, " if r["top1_drop_points"] is not None else ""
            line += f" ({drop}size x{r['size_ratio']:.2f}, latency x{r['latency_ratio']:.2f})"
        click.echo(line)
    lat = card["latency"]
    click.echo(f"deployment arch: predicted {lat['predicted_ms']:.3f} ms, measured {lat['measured']['ms']:.3f} ms "
               f"({lat['signed_error_pct']:+.1f}%), table {lat['table']}{_cpu_tag(lat)}")
    if i8 := lat.get("int8"):
        click.echo(f"deployment arch, int8: predicted {i8['predicted_ms']:.3f} ms, measured {i8['measured']['ms']:.3f} "
                   f"ms ({i8['signed_error_pct']:+.1f}%), table {i8['table']}{_cpu_tag(i8)}")
        if cmp := i8["measured"].get("kernels_compared"):
            ms = cmp["ms"]
            click.echo(f"deployment arch, int8 kernels on this CPU: xnnpack {ms['xnnpack']:.3f} ms, builtin "
                       f"{ms['builtin']:.3f} ms: {cmp['faster']} {cmp['ratio']:.2f}x faster (an Intel AVX-512/AMX "
                       "host: xnnpack 103.7, builtin 14.4 ms, quoted from DESIGN.md, not re-measured)")
    for sec in (lat, lat.get("int8") or {}):
        if sec.get("cpu_warning"):
            click.echo(f"warning: {sec['cpu_warning']}", err=True)
    if target := lat.get("search_target"):
        budget = f" (budget {target['budget_ms']:g} ms)" if "budget_ms" in target else ""
        how = (f"; on the phone: nse-hw tables profile-phone --model {out / lat['measured_file']}"
               if str(lat.get("measured_file", "")).endswith(".tflite") else "")
        click.echo(f"search target {target.get('device', target.get('table'))}: predicted "
                   f"{target['predicted_ms']:.3f} ms{budget}{how}")
    click.echo(f"wrote {out / 'model_card.json'}")


@click.command("export")
@click.argument("source", metavar="CHECKPOINT|RUN_DIR", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice([*FORMATS, *EXTRA_FORMATS, "all"]), default="all", show_default=True,
              help="all = tflite and onnx; pte = an ExecuTorch program lowered to XNNPACK (optional extra: "
                   "pip install -e '.[executorch]').")
@click.option("--int8", is_flag=True, help="Also an int8 PTQ .tflite, calibrated on real training images.")
@click.option("--input-size", type=int, default=None, help="Input H=W of the exported model (default: trained).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: RUN_DIR/export.")
@click.option("--force", is_flag=True, help="Write into a non-empty output directory (overwrites our files).")
@click.option("--table", default=None, help="Latency table for the deployment arch (default: host-litert).")
@click.option("--int8-table", default=None,
              help="With --int8: the int8 table that predicts the int8 deployment network (default: host-litert-int8).")
@click.option("--data", default=None, help="Test/calibration data (default: the one the checkpoint records).")
@click.option("--verify-images", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--calibration-images", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--runs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, callback=positive_threads)
@click.option("--json", "as_json", is_flag=True, help="Print the model card.")
def export_cmd(source: str, fmt: str, int8: bool, input_size: int | None, out: str | None, force: bool,
               table: str | None, int8_table: str | None, data: str | None, verify_images: int,
               calibration_images: int, runs: int, warmup: int, threads: int, as_json: bool) -> None:
    """Export a trained checkpoint to verified .tflite (float32, int8) and .onnx, with model_card.json."""
    if int8_table and not int8:
        raise NseError("--int8-table needs --int8")
    opts = ExportOptions(formats=FORMATS if fmt == "all" else (fmt,), int8=int8, input_size=input_size,
                         out=Path(out) if out else None, force=force, table=table, int8_table=int8_table, data=data,
                         verify_images=verify_images, calibration_images=calibration_images, runs=runs,
                         warmup=warmup, threads=threads)
    report = export_checkpoint(source, opts, HostAdapter())
    if as_json:
        echo_json(report.card)
    else:
        _echo_summary(report.card, report.out)
    if report.failures:
        click.echo(f"error: verification FAILED for {'; '.join(report.failures)}", err=True)
        raise SystemExit(1)


@click.command("measure")
@click.argument("model", metavar="MODEL.tflite|MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("--device", type=click.Choice(["host"]), default="host", show_default=True)
@threads_option(default=1, show_default=True,
                help="Runtime threads for the timed model (the shipped host tables were measured with 1; torch's "
                     "own threads play no part here).")
@click.option("--runs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--arch", "arch_file", type=click.Path(dir_okay=False), default=None,
              help="The model's arch file: print the table's prediction beside the measurement.")
@click.option("--table", default=None,
              help="Latency table (default with --arch: host-<runtime>[-int8][-t<threads>], the model's precision).")
@precision_option(help="Precision of the table to predict with [default: the model's: int8 for an int8 .tflite]; "
                       "a table of another precision or thread count is refused.")
@click.option("--kernels", type=click.Choice(["xnnpack", "builtin"]), default="xnnpack", show_default=True,
              help="LiteRT's kernel path: the XNNPACK delegate (default) or builtin kernels. An int8 .tflite is "
                   "timed both ways; the table must be of these kernels.")
@click.option("--json", "as_json", is_flag=True)
def measure_cmd(model: str, device: str, threads: int, runs: int, warmup: int, arch_file: str | None,
                table: str | None, precision: str | None, kernels: str, as_json: bool) -> None:
    """End-to-end latency of MODEL on this host: median and spread, and the prediction with --arch."""
    from nse_hw.hostcpu import this_cpu
    from nse_hw.latency.hosttables import default_host_table
    from nse_hw.latency.table import table_kernels
    from nse_hw.profilers.host import get_runner, summarize

    runtime = SUFFIX_RUNTIME.get(Path(model).suffix)
    if runtime is None:
        raise NseError(f"{model}: expected a .tflite or .onnx file")
    if table and not arch_file:
        raise NseError("--table needs --arch (the network the table should predict)")
    if precision and not arch_file:
        raise NseError("--precision needs --arch (it chooses the table that predicts the network)")
    runner = get_runner(runtime, threads=threads, kernels=kernels)
    session = runner.load(model)
    cpu_note = None
    pred = arch = None
    if arch_file:
        arch = read_arch(arch_file)
        model_precision = "int8" if session.input_dtype == "int8" else "float32"
        if precision and precision != model_precision:
            raise NseError(f"{model} is {model_precision}; --precision {precision} would predict another "
                           "network than the one timed")
        want = precision or model_precision
        lt = load_table(table or default_host_table(this_cpu(), runtime=runtime, precision=want, threads=threads,
                                                    kernels=kernels), runtime=runtime, precision=want, threads=threads)
        if runtime == "litert" and table_kernels(lt.meta) != kernels:
            raise NseError(f"latency table {lt.path} was timed with {table_kernels(lt.meta)} kernels, not {kernels}; "
                           f"pass --kernels {table_kernels(lt.meta)} or a table of {kernels} kernels")
        cpu_note = warn_other_cpu(lt)
        pred = (predict(arch, lt), lt)
    if threads > (cores := usable_cores()):
        click.echo(f"warning: --threads {threads} is more than the {cores} core(s) this process may use; "
                   f"the timing will include threads waiting for a core", err=True)
    if arch is not None:
        h, w, c = arch.input
        want = (1, h, w, c) if runtime == "litert" else (1, c, h, w)
        if tuple(session.input_shape) != want:
            raise NseError(f"{model} takes input {tuple(session.input_shape)}, but {arch_file} describes {want}")
    timing = summarize(session.time(warmup=warmup, runs=runs))
    result: dict[str, Any] = {"model": model, "device": device, "runtime": runtime, "runtime_version": runner.version,
                              "threads": threads, "warmup": warmup, "kernels": runner.kernels, **timing,
                              "cpu": this_cpu()}
    if session.input_dtype == "int8":  # the faster int8 path is CPU-dependent: time the other one too
        from nse_hw.export.card import kernels_comparison

        other = "builtin" if kernels == "xnnpack" else "xnnpack"
        t_other = summarize(get_runner(runtime, threads=threads, kernels=other).load(model).time(warmup=warmup,
                                                                                                 runs=runs))
        result["kernels_compared"] = kernels_comparison({kernels: timing, other: t_other})
    if pred is not None:
        p, lt = pred
        result.update({"arch": arch_file, "table": str(lt.path), "precision": table_precision(lt.meta),
                       "cpu_warning": cpu_note,
                       "predicted_ms": p.total_ms,
                       "lut_sum_ms": p.lut_sum_ms, "signed_error_pct": signed_error_pct(p.total_ms, timing["ms"])})
    if as_json:
        echo_json(result)
        return
    click.echo(f"{model}: {_fmt_ms(timing)} ({runtime} {runner.version}, {threads} thread(s)"
               + (f", {runner.kernels} kernels)" if runner.kernels else ")"))
    if cmp := result.get("kernels_compared"):
        ms = cmp["ms"]
        click.echo(f"int8 kernels on this CPU: xnnpack {ms['xnnpack']:.3f} ms, builtin {ms['builtin']:.3f} ms: "
                   f"{cmp['faster']} {cmp['ratio']:.2f}x faster")
    if pred is not None:
        click.echo(f"predicted {result['predicted_ms']:.3f} ms from {result['table']}: "
                   f"{result['signed_error_pct']:+.1f}% (predicted - measured) / measured")


COMMANDS = [export_cmd, measure_cmd]
