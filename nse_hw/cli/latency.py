"""`nse-hw latency ...`: predict a network's latency from a table (validate/calibrate live beside it)."""

from __future__ import annotations

import click

from nse_hw.cli.common import echo_json, read_arch, warn_other_cpu
from nse_hw.errors import NseError
from nse_hw.latency import arch_components, load_table, predict, table_for_device


@click.group("latency")
def latency() -> None:
    """Predict and validate latency from lookup tables."""


@latency.command("predict")
@click.argument("arch_file", type=click.Path(dir_okay=False))
@click.option("--table", "table_path", help="Table path or shipped name (e.g. host-litert).")
@click.option("--device", help="A device's shipped table (e.g. pixel1), instead of --table.")
@click.option("--no-fill", is_flag=True, help="A key the table lacks is an error, not a transfer-model prediction.")
@click.option("--input-size", type=int, help="Predict the arch at this input resolution (N x N).")
@click.option("--width", type=float, help="Width multiplier (MobileNet rule: multiples of 8; head kept below x1).")
@click.option("--setup", "setup_name", help="Map the table's prediction to another setup it holds a map for "
                                            "(e.g. google-readme on pixel1).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def predict_cmd(arch_file: str, table_path: str | None, device: str | None, no_fill: bool, input_size: int | None,
                width: float | None, setup_name: str | None, as_json: bool) -> None:
    """Total latency of ARCH_FILE and its per-layer breakdown.

    Keys the table lacks are predicted with the table's transfer model (marked `predicted` in the breakdown,
    with the model and what it extrapolates; the table file is not changed) when it has one; --no-fill makes
    them an error.
    """
    if bool(table_path) == bool(device):
        raise NseError("give exactly one of --table PATH and --device NAME")
    arch = read_arch(arch_file)
    if input_size is not None or width is not None:
        from nse_hw.space.scale import scale_arch

        arch = scale_arch(arch, resolution=input_size, width=1.0 if width is None else width)
    table = load_table(table_path or table_for_device(device))
    cpu_note = warn_other_cpu(table)
    comps = arch_components(arch, adds_in_ops=table.adds_in_ops)
    filled: list[str] = []
    if not no_fill and table.meta.get("transfer"):
        from nse_hw.latency.transfer import Unpredictable, fill_missing

        try:
            filled = fill_missing([k for c in comps for k, _ in c.keys], table)
        except Unpredictable as exc:
            layer = next(c.name for c in comps if any(k in exc.keys for k, _ in c.keys))
            raise NseError(f"{layer}: {exc}") from None
    predicted_rows = {c.name for c in comps if any(k in filled for k, _ in c.keys)}  # whole keys, not substrings
    pred = predict(arch, table)
    setup_ms = None
    if setup_name:
        from nse_hw.latency.setup import arch_parts, setup_map

        setup_ms = setup_map(table, setup_name).apply(arch_parts(arch, table))
    own = (table.meta.get("setup") or {}).get("name")
    if as_json:
        notes = {k: table.entries[k].get("extrapolated", []) for k in filled}
        models = {k: table.entries[k].get("model") for k in filled}
        echo_json({"arch": arch_file, "table": str(table.path), "setup": setup_name or own,
                   "setup_ms": setup_ms, "cpu_warning": cpu_note, "predicted_keys": filled, "predicted_models": models,
                   "extrapolated": {k: v for k, v in notes.items() if v}, **pred.to_dict()})
        return
    col = max(len(n) for n, _, _ in pred.rows)
    for name, keys, ms in pred.rows:
        mark = "  [predicted: not in the table]" if name in predicted_rows else ""
        click.echo(f"{name:<{col}}  {ms:9.3f} ms  {keys}{mark}")
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


from nse_hw.cli.validate import calibrate_cmd, validate_cmd  # noqa: E402  (they measure; kept apart)

latency.add_command(validate_cmd)
latency.add_command(calibrate_cmd)

COMMANDS = [latency]
