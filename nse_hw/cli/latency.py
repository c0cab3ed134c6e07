"""`nse-hw latency ...`: predict a network's latency from a table (validate/calibrate live beside it)."""

from __future__ import annotations

import click

from nse_hw.cli.common import echo_json, read_arch
from nse_hw.latency import load_table, predict


@click.group("latency")
def latency() -> None:
    """Predict and validate latency from lookup tables."""


@latency.command("predict")
@click.argument("arch_file", type=click.Path(dir_okay=False))
@click.option("--table", "table_path", required=True, help="Table path or shipped name (e.g. host-litert).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def predict_cmd(arch_file: str, table_path: str, as_json: bool) -> None:
    """Total latency of ARCH_FILE and its per-layer breakdown."""
    arch = read_arch(arch_file)
    table = load_table(table_path)
    pred = predict(arch, table)
    if as_json:
        echo_json({"arch": arch_file, "table": str(table.path), **pred.to_dict()})
        return
    width = max(len(n) for n, _, _ in pred.rows)
    for name, keys, ms in pred.rows:
        click.echo(f"{name:<{width}}  {ms:9.3f} ms  {keys}")
    click.echo(f"{'LUT sum':<{width}}  {pred.lut_sum_ms:9.3f} ms")
    click.echo(f"{'total':<{width}}  {pred.total_ms:9.3f} ms  ({table.meta.get('device')}, "
               f"{table.meta.get('runtime')}, {table.meta.get('threads')} thread(s))")


from nse_hw.cli.validate import calibrate_cmd, validate_cmd  # noqa: E402  (they measure; kept apart)

latency.add_command(validate_cmd)
latency.add_command(calibrate_cmd)

COMMANDS = [latency]
