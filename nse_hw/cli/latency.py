"""`nse-hw latency ...`: predict a network's latency from a table (validate/calibrate live beside it)."""

from __future__ import annotations

import click

from nse_hw.cli.common import echo_json, read_arch
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def predict_cmd(arch_file: str, table_path: str | None, device: str | None, no_fill: bool, as_json: bool) -> None:
    """Total latency of ARCH_FILE and its per-layer breakdown.

    Keys the table lacks are predicted with the table's transfer model (marked `predicted` in the breakdown;
    the table file is not changed) when it has one; --no-fill makes them an error.
    """
    if bool(table_path) == bool(device):
        raise NseError("give exactly one of --table PATH and --device NAME")
    arch = read_arch(arch_file)
    table = load_table(table_path or table_for_device(device))
    comps = arch_components(arch)
    filled: list[str] = []
    if not no_fill and table.meta.get("transfer"):
        from nse_hw.latency.transfer import fill_missing

        filled = fill_missing([k for c in comps for k, _ in c.keys], table)
    predicted_rows = {c.name for c in comps if any(k in filled for k, _ in c.keys)}  # whole keys, not substrings
    pred = predict(arch, table)
    if as_json:
        echo_json({"arch": arch_file, "table": str(table.path), "predicted_keys": filled, **pred.to_dict()})
        return
    width = max(len(n) for n, _, _ in pred.rows)
    for name, keys, ms in pred.rows:
        mark = "  [predicted: not in the table]" if name in predicted_rows else ""
        click.echo(f"{name:<{width}}  {ms:9.3f} ms  {keys}{mark}")
    click.echo(f"{'LUT sum':<{width}}  {pred.lut_sum_ms:9.3f} ms")
    click.echo(f"{'total':<{width}}  {pred.total_ms:9.3f} ms  ({table.meta.get('device')}, "
               f"{table.meta.get('runtime')}, {table.meta.get('threads')} thread(s))")
    if filled:
        click.echo(f"{len(filled)} key(s) were not in the table and were predicted by its transfer model")


from nse_hw.cli.validate import calibrate_cmd, validate_cmd  # noqa: E402  (they measure; kept apart)

latency.add_command(validate_cmd)
latency.add_command(calibrate_cmd)

COMMANDS = [latency]
