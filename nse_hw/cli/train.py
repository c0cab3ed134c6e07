"""`nse-hw train`: retrain an arch (file or search run directory) from scratch on its proxy task."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from nse_hw.cli.common import RUN_DIR_KEY, exit_on_lost_rank, read_arch, threads_option, use_threads
from nse_hw.config import from_dict
from nse_hw.errors import NseError
from nse_hw.evolve.rundir import search_data
from nse_hw.space import Arch
from nse_hw.train import dist
from nse_hw.train.recipe import TrainConfig, default_config_path, load_train_config
from nse_hw.train.rundir import LAST
from nse_hw.train.trainer import read_train_checkpoint, train


def resolve_arch_arg(path: str) -> tuple[Arch, Path]:
    """ARCH.json, or a search run directory holding arch.json; also the default output directory."""
    p = Path(path)
    if p.is_dir():
        if not (p / "arch.json").is_file():
            raise NseError(f"{p} is a directory without arch.json (expected an arch file or a search run dir)")
        return read_arch(str(p / "arch.json")), p / "retrain"
    return read_arch(path), Path("runs") / f"{p.stem}-retrain"


def _resume_args(resume: str, arch_arg: str | None, out: str | None, overrides: dict[str, object],
                 config: str | None, preset: str | None) -> tuple[Arch, TrainConfig, str, str]:
    state = read_train_checkpoint(Path(resume) / LAST)
    given = sorted(k for k, v in overrides.items() if v is not None)
    if given or config or preset:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "--config/--preset"
        raise NseError(f"--resume continues the run with its own config; drop {flags}")
    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise NseError("--resume DIR writes into DIR; drop --out")
    arch = Arch.from_dict(state["arch"])
    if arch_arg is not None and resolve_arch_arg(arch_arg)[0] != arch:
        raise NseError(f"{Path(resume) / LAST} was trained for another architecture than {arch_arg}")
    return arch, from_dict(TrainConfig, state["config"]), state.get("preset", ""), state["data"]["source"]


@click.command("train")
@click.argument("arch_file", required=False, metavar="ARCH.json|RUN_DIR")
@click.option("--data", default=None, help="fashion-mnist (default; a search run dir: the data it searched on), a task "
              "(configs/tasks: ct-fmnist-48, ct-fmnist-64, or a task .yaml), an IDX directory or an ImageFolder root.")
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Global batch (split over ranks).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Peak LR (global batch).")
@click.option("--width-mult", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Proxy channel multiplier (latency is always the deployment arch's).")
@click.option("--seed", type=int, default=None)
@click.option("--out", default=None, help="Run directory (default: RUN_DIR/retrain or runs/<arch>-retrain).")
@click.option("--resume", default=None, metavar="DIR", help="Continue the run in DIR from its last.pt.")
@click.option("--preset", default=None, help="A preset of the config file (fashion-mnist: smoke, default, full).")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
              help="Train config YAML (default: configs/train/fashion-mnist.yaml, imagenet.yaml for ImageFolder).")
@threads_option(help="torch threads per process [default: the config's `threads`, else the cores this process "
                     "may use split over torchrun's processes on this machine and the other nse-hw jobs running "
                     "on them; outside torchrun at most OMP_NUM_THREADS]. Recorded in the run; --resume keeps "
                     "the recorded count (a different --threads is ignored with a warning).")
@exit_on_lost_rank
def train_cmd(arch_file: str | None, data: str | None, epochs: int | None, batch_size: int | None,
              lr: float | None, width_mult: float | None, seed: int | None, out: str | None, resume: str | None,
              preset: str | None, config_file: str | None, threads: int | None) -> None:
    """Retrain ARCH from scratch on its proxy task; run under torchrun for DDP.

    Writes checkpoints (best.pt, last.pt), metrics.jsonl, curve.png and result.json (test top-1).
    """
    overrides = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "width_mult": width_mult, "seed": seed}
    if resume:
        arch, cfg, preset_used, source = _resume_args(resume, arch_file, out, overrides, config_file, preset)
        source = data or source
        out_dir = Path(resume)
    else:
        if arch_file is None:
            raise click.UsageError("give ARCH.json|RUN_DIR (or --resume DIR)")
        arch, default_out = resolve_arch_arg(arch_file)
        source = data or search_data(arch_file) or "fashion-mnist"
        config_file = config_file or str(default_config_path(source))
        cfg, preset_used = load_train_config(config_file, preset=preset, **overrides)
        out_dir = Path(out) if out else default_out
    dist.init_distributed()
    n = use_threads(threads, recorded=cfg.threads, resume=bool(resume))
    cfg = cfg if resume else replace(cfg, threads=n)  # config.yaml, every checkpoint, result.json
    click.get_current_context().meta[RUN_DIR_KEY] = str(out_dir)
    result = train(arch, data=source, cfg=cfg, out=out_dir, preset=preset_used,
                   config_path=None if resume else config_file, resume=bool(resume))
    if dist.is_main():
        click.echo(f"test top-1 {100 * result.test_top1:.2f}% (best held-out {100 * result.best_val_top1:.2f}% "
                   f"at epoch {result.best_epoch}/{result.epochs}, width x{cfg.width_mult}, "
                   f"{result.wall_s:.0f} s); run dir {result.run_dir}")


COMMANDS = [train_cmd]
