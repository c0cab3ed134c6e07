"""`nse-hw search`: NSE (or the random-search baseline) under a device latency budget."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from nse_hw.cli.common import RUN_DIR_KEY, exit_on_lost_rank, other_cpu_warning, threads_option, use_threads
from nse_hw.cli.precision import precision_option
from nse_hw.config import from_dict
from nse_hw.errors import NseError
from nse_hw.evolve import (
    DEFAULT_DEVICE,
    PRESETS,
    Context,
    RunDir,
    RunInfo,
    SearchConfig,
    load_search_config,
    nse_search,
    parse_latency,
    preset_path,
    random_search,
    resolve_table,
)
from nse_hw.hostcpu import OTHER, cpu_status, this_cpu
from nse_hw.train.dist import broadcast_object, init_distributed, is_main, on_main

log = logging.getLogger("nse_hw.search")


def _new_run(latency: str | None, device: str | None, table: str | None, space: str | None, data: str | None,
             config: str | None, preset: str | None, out: str | None, seed: int | None,
             baseline: str | None, precision: str | None = None, allow_other_host: bool = False
             ) -> tuple[SearchConfig, RunInfo, RunDir]:
    if latency is None:
        raise NseError("--latency is required (e.g. --latency 80ms), unless you --resume a run")
    budget = parse_latency(latency)
    if config and preset:
        raise NseError("give either --config or --preset, not both")
    tbl = resolve_table(device=device, table=table, precision=precision)
    if msg := other_cpu_warning(tbl):  # a host table of another CPU would search for the wrong budget
        if cpu_status(tbl.meta, this_cpu()) == OTHER and not allow_other_host:
            raise NseError(f"{msg}; or search with it anyway: --allow-other-host")
        click.echo(f"warning: {msg}", err=True)  # not known to be another CPU's, or allowed
    cfg = load_search_config(config or preset_path(preset or "default"), space=space, seed=seed)
    if data is not None:
        cfg.data.source = data
    stamp = broadcast_object(time.strftime("%Y%m%d-%H%M%S"))
    run = RunDir(out or Path("runs") / "search" / stamp)
    return cfg, RunInfo(budget, str(Path(str(tbl.path)).resolve()), device, baseline or "nse"), run


def _lock(run: RunDir, *, existing: bool) -> None:
    """Rank 0 holds the run directory's lock until the command ends (click closes the resource)."""
    on_main(lambda: click.get_current_context().with_resource(run.locked(existing=existing)))


@click.command("search")
@click.option("--latency", help="Latency budget: 80ms, '80 ms', 0.08s or 80 (ms).")
@click.option("--device", help=f"Device whose shipped table to use (default: {DEFAULT_DEVICE}).")
@click.option("--table", help="Latency table path or shipped name (instead of --device).")
@click.option("--space", help="Search space name or YAML (default: nse27-proxyless224).")
@click.option("--data", help="fashion-mnist (default), a directory of Fashion-MNIST IDX files, or an ImageFolder.")
@click.option("--config", "config", type=click.Path(dir_okay=False), help="Search config YAML.")
@click.option("--preset", type=click.Choice(PRESETS), help="configs/search/<preset>.yaml (default: default).")
@click.option("--out", help="Run directory (default: runs/search/<time>).")
@click.option("--resume", type=click.Path(), help="Continue the run in RUN_DIR (its own config is used).")
@click.option("--seed", type=int, help="Seed of every random stream.")
@click.option("--baseline", type=click.Choice(["random"]), help="Run the random-search baseline instead of NSE.")
@click.option("--allow-other-host", is_flag=True,
              help="Search against a host table measured on another CPU (or one that does not record its CPU); "
                   "refused by default: host tables are per CPU.")
@precision_option(help="Search against the device's int8 (or float32) table: latency of what `export --int8` ships. "
                       "With --table, a table of another precision is refused [default: float32 / the table's].")
@threads_option(help="torch threads per process [default: the config's `threads`, else the cores this process "
                     "may use split over torchrun's processes on this machine; outside torchrun at most "
                     "OMP_NUM_THREADS]. Recorded in the run; --resume keeps the recorded count (a different "
                     "--threads is ignored with a warning).")
@exit_on_lost_rank
def search(latency: str | None, device: str | None, table: str | None, space: str | None, data: str | None,
           config: str | None, preset: str | None, out: str | None, resume: str | None, seed: int | None,
           baseline: str | None, threads: int | None, precision: str | None, allow_other_host: bool) -> None:
    """Search the space for the most accurate architecture within the latency budget; writes RUN_DIR/arch.json."""
    init_distributed()
    if resume:
        given = [n for n, v in [("--latency", latency), ("--device", device), ("--table", table), ("--space", space),
                                ("--data", data), ("--config", config), ("--preset", preset), ("--out", out),
                                ("--seed", seed), ("--baseline", baseline), ("--precision", precision)]
                 if v is not None]
        if given:
            click.echo(f"warning: --resume uses the run's own settings; ignoring {', '.join(given)}", err=True)
        run = RunDir(resume)
        _lock(run, existing=True)
        info, cfg_dict = run.open()
        cfg = from_dict(SearchConfig, cfg_dict).check()
    else:
        cfg, info, run = _new_run(latency, device, table, space, data, config, preset, out, seed, baseline,
                                  precision, allow_other_host)
    cfg.threads = use_threads(threads, recorded=cfg.threads, resume=bool(resume))  # run.json and config.yaml
    click.get_current_context().meta[RUN_DIR_KEY] = str(run.path)
    ctx = Context.build(cfg, info, run)  # loads and checks everything before a run directory is created
    if not resume:
        _lock(run, existing=False)
        on_main(lambda: run.create(info, cfg))
    handler = run.attach_log() if is_main() else None
    try:
        log.info("%s search: budget %.2f ms on %s (space %s: %.2f .. %.2f ms), run %s", info.kind, info.budget_ms,
                 info.table, cfg.space, ctx.budget.min_ms, ctx.budget.max_ms, run.path)
        log.info("%d torch thread(s) per process", cfg.threads)
        best = random_search(ctx) if info.kind == "random" else nse_search(ctx)
    finally:
        if handler:
            logging.getLogger("nse_hw").removeHandler(handler)
            handler.close()
    if is_main():
        click.echo(f"{run.arch}: {best.ms:.2f} ms predicted ({100 * best.ms / info.budget_ms:.1f}% of the "
                   f"{info.budget_ms:g} ms budget), proxy held-out top-1 {best.acc:.4f}")


COMMANDS = [search]
