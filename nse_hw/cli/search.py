"""`nse-hw search`: NSE (or the random-search baseline) under a device latency budget."""

from __future__ import annotations

from contextlib import ExitStack

import click

from nse_hw.cli.common import RUN_DIR_KEY, exit_on_lost_rank, threads_option, use_threads
from nse_hw.cli.precision import precision_option
from nse_hw.evolve import DEFAULT_DEVICE, PRESETS, RunDir
from nse_hw.evolve.run import SearchRequest, execute, hold_run, new_run, open_run
from nse_hw.train.dist import init_distributed, is_main


def _hold(run: RunDir, *, existing: bool) -> None:
    """The run directory's lock, held until the command ends (click closes the resource)."""
    click.get_current_context().with_resource(hold_run(run, existing=existing))


@click.command("search")
@click.option("--latency", help="Latency budget: 80ms, '80 ms', 0.08s or 80 (ms).")
@click.option("--device", help=f"Device whose shipped table to use (default: {DEFAULT_DEVICE}).")
@click.option("--table", help="Latency table path or shipped name (instead of --device).")
@click.option("--space", help="Search space name or YAML (default: nse27-proxyless224).")
@click.option("--data", help="fashion-mnist (default), a task (configs/tasks: ct-fmnist-48, ct-fmnist-64, or a "
              "task .yaml), a directory of Fashion-MNIST IDX files, or an ImageFolder.")
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
                     "may use split over torchrun's processes on this machine and the other nse-hw jobs running "
                     "on them; outside torchrun at most OMP_NUM_THREADS]. Recorded in the run; --resume keeps "
                     "the recorded count (a different --threads is ignored with a warning).")
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
        _hold(run, existing=True)
        cfg, info, run = open_run(run.path)
    else:
        cfg, info, run = new_run(SearchRequest(latency, device, table, space, data, config, preset, out, seed,
                                               baseline, precision, allow_other_host))
    cfg.threads = use_threads(threads, recorded=cfg.threads, resume=bool(resume))  # run.json and config.yaml
    click.get_current_context().meta[RUN_DIR_KEY] = str(run.path)
    stack = click.get_current_context().with_resource(ExitStack())
    best = execute(cfg, info, run, resume=bool(resume), stack=stack)
    if is_main():
        click.echo(f"{run.arch}: {best.ms:.2f} ms predicted ({100 * best.ms / info.budget_ms:.1f}% of the "
                   f"{info.budget_ms:g} ms budget), proxy held-out top-1 {best.acc:.4f}")


COMMANDS = [search]
