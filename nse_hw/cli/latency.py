"""`nse-hw latency ...`: predict a network's latency from a table (validate/calibrate live beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nse_hw.cli.common import echo_json, read_arch, warn_other_cpu
from nse_hw.errors import NseError
from nse_hw.latency import load_table, table_for_device
from nse_hw.latency.predict import predict_components
from nse_hw.latency.report import latency_report, report_components
from nse_hw.paths import ARCHS


@click.group("latency")
def latency() -> None:
    """Predict and validate latency from lookup tables."""


@latency.command("predict")
@click.argument("model")
@click.option("--table", "table_path", help="Table path or shipped name (e.g. host-litert).")
@click.option("--device", help="A device's shipped table (e.g. pixel1), instead of --table.")
@click.option("--no-fill", is_flag=True, help="A key the table lacks is an error, not a transfer-model prediction.")
@click.option("--input-size", type=int, help="Input resolution N x N: rescales an arch file; the size of a model "
                                             "name or of a model file whose input is dynamic.")
@click.option("--width", type=float, help="Width multiplier of an arch file (MobileNet rule: multiples of 8; head "
                                          "kept below x1). A model name takes its own (mobilenet_v2@width_mult=0.5).")
@click.option("--setup", "setup_name", help="Map the table's prediction to another setup it holds a map for "
                                            "(e.g. google-readme on pixel1).")
@click.option("--save-arch", type=click.Path(dir_okay=False), help="Also write the imported network as an arch file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def predict_cmd(model: str, table_path: str | None, device: str | None, no_fill: bool, input_size: int | None,
                width: float | None, setup_name: str | None, save_arch: str | None, as_json: bool) -> None:
    """Total latency of MODEL and its per-unit breakdown.

    MODEL is an arch file (.json), a .onnx or .tflite file, or a torchvision / timm model name with
    --input-size (mobilenet_v3_large, mnasnet0_5, mobilenet_v2@width_mult=0.5, timm/NAME). Files and names are
    read into the units the tables price (stem, MBConv blocks, residual adds, head, pool, classifier); an op
    no table can price is refused, naming the node.

    Keys the table lacks are predicted with the table's transfer model (marked `predicted` in the breakdown,
    with the model and what it extrapolates; the table file is not changed) when it has one, ReLU units from
    their ReLU6 twin (the same fused kernel); --no-fill makes them an error.
    """
    if bool(table_path) == bool(device):
        raise NseError("give exactly one of --table PATH and --device NAME")
    table = load_table(table_path or table_for_device(device))  # a bad table fails before a slow import
    cpu_note = warn_other_cpu(table)
    imported = None
    if model.lower().endswith(".json") or (Path(model).is_file() and Path(model).suffix.lower() not in
                                           (".onnx", ".tflite")) or (not Path(model).exists() and
                                                                     (ARCHS / f"{model}.json").is_file()):
        # an arch file, whatever its name, or a shipped arch by name (before a torchvision/timm name)
        arch = read_arch(model)
        if input_size is not None or width is not None:
            from nse_hw.space.scale import scale_arch

            arch = scale_arch(arch, resolution=input_size, width=1.0 if width is None else width)
    else:
        if width is not None:
            raise NseError("--width rescales arch files; give a model name its own width (e.g. "
                           "mobilenet_v2@width_mult=0.5) or export the model at that width")
        from nse_hw.export.models import import_model

        imported = import_model(model, input_size=input_size)
        arch = imported.arch
    report = latency_report(arch, table, fill=not no_fill, setup=setup_name, imported=imported)
    comps = report_components(arch, table, imported)
    pred = predict_components(comps, table)  # the rows printed below (the report's keys, filled in the table)
    filled, setup_ms = list(report.filled_keys), report.setup_ms
    if save_arch:
        from nse_hw.space import save_arch as write_arch

        write_arch(arch, save_arch)
    own = (table.meta.get("setup") or {}).get("name")
    predicted_rows = {c.name for c in comps if any(k in filled for k, _ in c.keys)}  # whole keys, not substrings
    if as_json:
        echo_json({**_json_report(model, table, pred, comps, filled, imported, setup_name or own, setup_ms),
                   "cpu_warning": cpu_note})
        return
    col = max(len(n) for n, _, _ in pred.rows)
    for name, keys_text, ms in pred.rows:
        mark = "  [predicted: not in the table]" if name in predicted_rows else ""
        click.echo(f"{name:<{col}}  {ms:9.3f} ms  {keys_text}{mark}")
    click.echo(f"{'LUT sum':<{col}}  {pred.lut_sum_ms:9.3f} ms")
    click.echo(f"{'total':<{col}}  {pred.total_ms:9.3f} ms  ({table.meta.get('device')}, "
               f"{table.meta.get('runtime')}, {table.meta.get('threads')} thread(s)"
               + (f", setup {own}" if own else "") + ")")
    if setup_ms is not None:
        click.echo(f"{'in setup':<{col}}  {setup_ms:9.3f} ms  ({setup_name}: the table's map to that setup)")
    if filled:
        n_ext = sum(1 for k in filled if table.entries[k].get("extrapolated"))
        click.echo(f"{len(filled)} key(s) were not in the table and were predicted by its transfer model "
                   f"({n_ext} extrapolate; --json lists the model and extrapolation of each)")
    if imported:
        for note in imported.notes + list(imported.extra_notes.values()):
            click.echo(f"note: {note}")


def _json_report(model: str, table: Any, pred: Any, comps: list[Any], filled: list[str], imported: Any,
                 setup: str | None, setup_ms: float | None) -> dict[str, Any]:
    notes = {k: table.entries[k].get("extrapolated", []) for k in filled}
    models = {k: table.entries[k].get("model") for k in filled}
    out = {"arch": model, "table": str(table.path), "setup": setup, "setup_ms": setup_ms, "predicted_keys": filled,
           "predicted_models": models, "extrapolated": {k: v for k, v in notes.items() if v}, **pred.to_dict()}
    units = imported.units if imported else {}
    for row, comp in zip(out["layers"], comps, strict=True):
        row["nodes"] = units.get(comp.name, [])
        row["predicted"] = [k for k, _ in comp.keys if k in filled]
        if imported and comp.name in imported.extra_notes:
            row["note"] = imported.extra_notes[comp.name]
    if imported:
        out["imported"] = {"source": imported.source, "format": imported.fmt, "notes": imported.notes,
                           "arch": imported.arch.to_dict()}
    return out


from nse_hw.cli.validate import calibrate_cmd, validate_cmd  # noqa: E402  (they measure; kept apart)

latency.add_command(validate_cmd)
latency.add_command(calibrate_cmd)

COMMANDS = [latency]
