"""The long jobs of the Python API: :func:`search`, :func:`train_model`, :func:`export_model` (re-exported by
:mod:`nse_hw.api` and at the top level). Each runs what its CLI command runs (``nse-hw search``, ``train``,
``export``): the same run directories, atomic writes and resume, and bad input refused before any work.

torch runs with ``threads`` threads inside a call (default: the cores this process may use) and is restored
afterwards. Under ``torchrun`` every rank calls the function; only rank 0 writes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nse_hw.errors import NseError

if TYPE_CHECKING:
    from torch import nn

    from nse_hw.api import ArchLike
    from nse_hw.space import Arch
    from nse_hw.train.trainer import TrainResult


F = TypeVar("F", bound=Callable[..., Any])


def bad_input_is_nse_error(fn: F) -> F:
    """A ValueError from the library (a malformed budget, config or space file) is an NseError here, as the CLI
    shows it: one line. The original stays chained (``__cause__``) for debugging."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            if isinstance(exc, NseError):
                raise
            raise NseError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class SearchResult:
    """The architecture a search chose and where its run lives.

    ``predicted_ms`` is its latency on the search's table; ``accuracy`` its proxy held-out top-1 (what the search
    ranked it by: a proxy score, not the accuracy of the retrained network).
    """

    arch: Arch
    predicted_ms: float
    accuracy: float
    budget_ms: float
    table: str
    run_dir: Path

    @property
    def arch_file(self) -> Path:
        return self.run_dir / "arch.json"

    def to_dict(self) -> dict[str, Any]:
        return {"arch_file": str(self.arch_file), "predicted_ms": self.predicted_ms, "accuracy": self.accuracy,
                "budget_ms": self.budget_ms, "table": self.table, "run_dir": str(self.run_dir)}


@bad_input_is_nse_error
def search(latency: str | float | None = None, *, device: str | None = None, table: str | Path | None = None,
           space: str | Path | None = None, preset: str | None = None, config: str | Path | None = None,
           data: str | None = None, out: str | Path | None = None, seed: int | None = None,
           threads: int | None = None, resume: bool = False) -> SearchResult:
    """Search for the most accurate architecture within a latency budget (NSE), as ``nse-hw search``.

    Args:
        latency: The budget: ``"80ms"``, ``"0.08s"`` or a number of ms.
        device: The device whose shipped table prices the budget (default ``pixel1``); or give ``table``.
        table: A table name or path instead of ``device``.
        space: Search space name or YAML (default: the config's, ``nse27-proxyless224``).
        preset: ``configs/search/<preset>.yaml``: ``default``, ``smoke`` (a one-minute run),
            ``ct-fmnist-48`` (the cluttered task's settings) or ``imagenet-nse27`` (the paper's, for GPUs). Or
            give ``config``.
        config: A search config YAML instead of a preset.
        data: ``fashion-mnist`` (default), a task (``ct-fmnist-48``, ``ct-fmnist-64`` or a task YAML), a
            directory of Fashion-MNIST IDX files, or an ImageFolder root (default: the preset's).
        out: The run directory (default ``runs/search/<time>``); it must not already hold a run.
        seed: Seed of every random stream (default: the config's).
        threads: torch threads (default: the config's, else the cores this process may use).
        resume: Continue the run in ``out`` (after a crash or kill) with its own recorded settings; give no
            other setting.

    Returns:
        A :class:`SearchResult`; ``run_dir`` holds ``arch.json``, ``result.json``, the rounds and plots.

    Raises:
        NseError: A malformed or unreachable budget, no such table, device, space or data, an existing run in
            ``out``; all before the run directory is created.

    Examples:
        >>> result = search("80ms", device="pixel1", preset="smoke", out="runs/smoke")  # doctest: +SKIP
        >>> result.predicted_ms <= result.budget_ms, result.arch_file.name  # doctest: +SKIP
        (True, 'arch.json')
    """
    from contextlib import ExitStack

    from nse_hw.evolve.run import SearchRequest, execute, hold_run, new_run, open_run
    from nse_hw.train.dist import init_distributed
    from nse_hw.train.threads import settle_threads, torch_threads

    init_distributed()
    with ExitStack() as stack:
        if resume:
            given = [n for n, v in [("latency", latency), ("device", device), ("table", table), ("space", space),
                                    ("preset", preset), ("config", config), ("data", data), ("seed", seed)]
                     if v is not None]
            if out is None or given:
                raise NseError("resume=True continues the run in out= with its own settings; "
                               + (f"drop {', '.join(given)}" if given else "give out="))
            stack.enter_context(hold_run(_run_dir(out), existing=True))
            cfg, info, run = open_run(out)
        else:
            if latency is None:
                raise NseError("give a latency budget (e.g. search('80ms')), or resume=True with out=")
            cfg, info, run = new_run(SearchRequest(latency, device, None if table is None else str(table),
                                                   None if space is None else str(space), data,
                                                   None if config is None else str(config), preset, out, seed))
        cfg.threads = stack.enter_context(settle_threads(threads, recorded=cfg.threads, resume=resume,
                                                         command="search"))
        stack.enter_context(torch_threads(cfg.threads))
        best = execute(cfg, info, run, resume=resume, stack=stack)
    return SearchResult(_load_arch(run.arch), best.ms, best.acc, info.budget_ms, info.table, run.path)


def _load_arch(arch: ArchLike) -> Arch:
    """:func:`nse_hw.api.load_arch` (imported on call: nse_hw.api imports this module)."""
    from nse_hw.api import load_arch as read

    return read(arch)


def _run_dir(path: str | Path) -> Any:
    from nse_hw.evolve import RunDir

    return RunDir(path)


@bad_input_is_nse_error
def train_model(arch: ArchLike, *, out: str | Path, data: str | None = None, preset: str | None = None,
                config: str | Path | None = None, epochs: int | None = None, seed: int | None = None,
                threads: int | None = None, resume: bool = False) -> TrainResult:
    """Retrain ``arch`` from scratch on its proxy task, as ``nse-hw train``.

    Args:
        arch: The deployment network (an arch, arch file, shipped name, or a search run directory).
        out: The training run directory (``best.pt``, ``last.pt``, ``result.json``, ``curve.png``).
        data: ``fashion-mnist``, a task (``ct-fmnist-48``, ``configs/tasks/``), an IDX directory or an ImageFolder
            root (``train/`` and ``val/``). Default: the data a search run directory searched on, else
            ``fashion-mnist``.
        preset: A preset of the config file (Fashion-MNIST: ``smoke``, ``default``, ``full``).
        config: A train config YAML (default: the Fashion-MNIST recipe, or ImageNet's for an ImageFolder).
        epochs: Override the config's epochs.
        seed: Override the config's seed.
        threads: torch threads (default: the config's, else the cores this process may use).
        resume: Continue the run in ``out`` from its ``last.pt`` with its own config (give only ``out``).

    Returns:
        The :class:`~nse_hw.train.trainer.TrainResult`: ``test_top1``, ``best_val_top1``, ``best_epoch``,
        ``run_dir``; pass ``run_dir`` to :func:`export_model`.

    Examples:
        >>> result = train_model("runs/smoke", out="runs/smoke/train", preset="smoke")  # doctest: +SKIP
        >>> 0 <= result.test_top1 <= 1  # doctest: +SKIP
        True
    """
    from dataclasses import replace

    from nse_hw.config import from_dict
    from nse_hw.space import Arch
    from nse_hw.train.recipe import TrainConfig, default_config_path, load_train_config
    from nse_hw.train.rundir import LAST
    from nse_hw.train.threads import settle_threads
    from nse_hw.train.trainer import read_train_checkpoint, train

    if resume:
        if preset or config or epochs is not None or seed is not None:
            raise NseError("resume=True continues the run in out= with its own config; drop preset, config, "
                           "epochs and seed")
        state = read_train_checkpoint(Path(out) / LAST)
        deploy, cfg = Arch.from_dict(state["arch"]), from_dict(TrainConfig, state["config"])
        if _load_arch(arch) != deploy:
            raise NseError(f"{Path(out) / LAST} was trained for another architecture than {arch}")
        preset_used, source, config_path = state.get("preset", ""), state["data"]["source"], None
    else:
        from nse_hw.evolve.rundir import search_data

        deploy = _load_arch(arch)
        source = data or (search_data(str(arch)) if isinstance(arch, str | Path) else None) or "fashion-mnist"
        config_path = str(config or default_config_path(source))
        try:
            cfg, preset_used = load_train_config(config_path, preset=preset, epochs=epochs, seed=seed)
        except ValueError as exc:
            raise NseError(str(exc).splitlines()[0]) from None
    with settle_threads(threads, recorded=cfg.threads, resume=resume, command="train") as n:
        cfg = cfg if resume else replace(cfg, threads=n)
        return train(deploy, data=source, cfg=cfg, out=out, preset=preset_used, config_path=config_path,
                     resume=resume)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: ``files`` (every file, ``model_card.json`` last), and the card's contents."""

    out: Path
    files: tuple[Path, ...]
    card: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": [str(p) for p in self.files]}


@bad_input_is_nse_error
def export_model(source: str | Path | nn.Module, *, out: str | Path | None = None,
                 formats: Sequence[str] = ("tflite", "onnx"), int8: bool = False, input_size: int | None = None,
                 table: str | None = None, force: bool = False, verify_images: int = 1000, runs: int = 200,
                 warmup: int = 20, threads: int = 1) -> ExportResult:
    """Export a trained network to verified ``.tflite`` / ``.onnx`` (``.pte``) files, as ``nse-hw export``.

    Args:
        source: A training run directory (its ``best.pt``) or checkpoint file; or a plain ``nn.Module`` with an
            ``.arch`` (from :func:`build_model`), exported with the weights it has, checked on random inputs.
        out: Output directory (default: ``RUN_DIR/export``; required for a module).
        formats: Any of ``tflite``, ``onnx``, ``pte`` (ExecuTorch, an optional extra).
        int8: Also an int8 PTQ ``.tflite`` (or ``.pte``), calibrated on real training images (run sources only).
        input_size: Input H = W of the exported files (default: what it was trained at).
        table: Latency table that predicts the deployment network (default ``host-litert``; run sources only).
        force: Write into a non-empty output directory (our files are overwritten).
        verify_images: Test images each file is checked on against PyTorch.
        runs: Timed runs of each file on this host (median and spread go into the card).
        warmup: Untimed runs before those.
        threads: Runtime threads for the timed files.

    Returns:
        An :class:`ExportResult`; ``model_card.json`` (run sources) holds accuracy, predicted and measured
        latency, and each file's verification.

    Raises:
        NseError: Bad input (before any conversion), a conversion failure naming the op and the layer, or a file
            that does not match PyTorch (its files and card are written; the message names them).

    Examples:
        >>> result = export_model("runs/smoke/train", formats=["tflite"])  # doctest: +SKIP
        >>> [p.name for p in result.files]  # doctest: +SKIP
        ['arch.json', 'proxy_arch.json', 'model.tflite', 'deployment_random_weights.tflite', 'model_card.json']
    """
    from nse_hw.export.ship import ExportOptions, export_checkpoint
    from nse_hw.profilers.runtimes import HostAdapter

    if not isinstance(source, str | Path):
        return _export_module(source, out=out, formats=tuple(formats), int8=int8, input_size=input_size,
                              table=table, force=force, verify_images=verify_images, runs=runs, warmup=warmup,
                              threads=threads)
    opts = ExportOptions(formats=tuple(formats), int8=int8, input_size=input_size,
                         out=None if out is None else Path(out), force=force, table=table,
                         verify_images=verify_images, runs=runs, warmup=warmup, threads=threads)
    report = export_checkpoint(source, opts, HostAdapter())
    names = ["arch.json", "proxy_arch.json", *report.card["files"], "model_card.json"]
    files = tuple(report.out / n for n in names)
    if report.failures:
        raise NseError(f"verification FAILED for {'; '.join(report.failures)} (files and model_card.json are in "
                       f"{report.out})")
    return ExportResult(report.out, files, report.card)


def _export_module(model: nn.Module, *, out: str | Path | None, formats: tuple[str, ...], int8: bool,
                   input_size: int | None, table: str | None, force: bool, verify_images: int, runs: int,
                   warmup: int, threads: int) -> ExportResult:
    from torch import nn

    from nse_hw.export.network import FILES, REPORT, export_network
    from nse_hw.profilers.runtimes import HostAdapter

    if not isinstance(model, nn.Module):
        raise NseError(f"cannot export a {type(model).__name__}; give a training run directory, a checkpoint or an "
                       "nn.Module from build_model")
    if out is None:
        raise NseError("exporting a module needs out= (there is no run directory to write into)")
    if int8 or table is not None:
        raise NseError("int8= and table= need a training run (calibration images, the deployment arch); "
                       "export the run directory instead")
    arch = _load_arch(model)  # the input shape comes from the arch the module was built from
    size = arch.input[0] if input_size is None else input_size
    report = export_network(model, (1, arch.input[2], size, size), Path(out), HostAdapter(), formats=formats,
                            force=force, verify_images=verify_images, runs=runs, warmup=warmup, threads=threads)
    files = tuple(Path(out) / n for n in [FILES[f][0] for f in formats] + [REPORT])
    return ExportResult(Path(out), files, report)
