"""Start or resume a search run and carry it to its final architecture: what `nse-hw search` and
:func:`nse_hw.search` both call (the CLI adds only option parsing, thread settling and its output line).

Everything that can refuse (budget, table, config, space, data, memory) is checked before the run directory is
created; one process holds the directory's lock for the whole run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from nse_hw.config import from_dict
from nse_hw.errors import NseError
from nse_hw.evolve.budget import parse_latency, resolve_table
from nse_hw.evolve.config import SearchConfig, load_search_config, preset_path
from nse_hw.evolve.context import Context
from nse_hw.evolve.nse import nse_search
from nse_hw.evolve.pareto import Candidate
from nse_hw.evolve.random_search import random_search
from nse_hw.evolve.rundir import RunDir, RunInfo
from nse_hw.latency import LatencyTable
from nse_hw.train.cluttered import load_task
from nse_hw.train.dist import broadcast_object, is_main, on_main

log = logging.getLogger("nse_hw.search")


@dataclass(frozen=True)
class SearchRequest:
    """What a new run is asked to do (None: the default; ``config`` and ``preset`` exclude each other)."""

    latency: str | float
    device: str | None = None
    table: str | None = None
    space: str | None = None
    data: str | None = None
    config: str | None = None
    preset: str | None = None
    out: str | Path | None = None
    seed: int | None = None
    baseline: str | None = None  # "random": the random-search baseline instead of NSE
    precision: str | None = None
    allow_other_host: bool = False  # search against a host table of another CPU (refused by default)


def check_table_cpu(table: LatencyTable, *, allow_other_host: bool) -> None:
    """Refuse a host table of another CPU (it would search for the wrong budget) unless allowed; warn for one
    allowed or not known to be this CPU's."""
    from nse_hw.hostcpu import OTHER, cpu_status, cpu_warning, this_cpu

    if msg := cpu_warning(table.meta, this_cpu(), str(table.path or table.name)):
        if cpu_status(table.meta, this_cpu()) == OTHER and not allow_other_host:
            raise NseError(f"{msg}; or search with it anyway: --allow-other-host")
        if is_main():
            log.warning("%s", msg)


def new_run(req: SearchRequest) -> tuple[SearchConfig, RunInfo, RunDir]:
    """The config, request and run directory of a new run (nothing is written yet)."""
    if req.latency is None:
        raise NseError("--latency is required (e.g. --latency 80ms), unless you --resume a run")
    budget = parse_latency(str(req.latency))
    if req.config and req.preset:
        raise NseError("give either --config or --preset, not both")
    if req.baseline not in (None, "random"):
        raise NseError(f"unknown baseline {req.baseline!r} (random)")
    tbl = resolve_table(device=req.device, table=req.table, precision=req.precision)
    check_table_cpu(tbl, allow_other_host=req.allow_other_host)
    cfg = load_search_config(req.config or preset_path(req.preset or "default"), space=req.space, seed=req.seed)
    if req.data is not None:
        if (msg := data_warning(cfg.data.source, req.data, req.config or f"the {req.preset or 'default'} preset")) \
                and is_main():
            log.warning("%s", msg)
        cfg.data.source = req.data
    stamp = broadcast_object(time.strftime("%Y%m%d-%H%M%S"))
    run = RunDir(req.out or Path("runs") / "search" / stamp)
    return cfg, RunInfo(budget, str(Path(str(tbl.path)).resolve()), req.device, req.baseline or "nse"), run


def data_warning(configured: str, data: str, what: str) -> str | None:
    """The warning where --data puts settings made for Fashion-MNIST on a cluttered task (None elsewhere): on
    ct-fmnist-48 the default preset's supernet stays at chance (benchmarks/search/supernet_ct48.py)."""
    if configured != "fashion-mnist" or load_task(data) is None:
        return None
    return (f"{what} is set for fashion-mnist: on ct-fmnist-48 the default preset's supernet settings left every "
            f"path at chance after a round (measured); --preset ct-fmnist-48 holds settings measured to learn there")


def open_run(path: str | Path) -> tuple[SearchConfig, RunInfo, RunDir]:
    """An existing run's config, request and directory, to resume it (its own settings; an edited config.yaml is
    refused). Call it while holding the run's lock (:func:`hold_run` with ``existing=True``)."""
    run = RunDir(path)
    info, cfg_dict = run.open()
    return from_dict(SearchConfig, cfg_dict).check(), info, run


@contextmanager
def hold_run(run: RunDir, *, existing: bool) -> Iterator[None]:
    """Rank 0 holds the run directory's lock inside the block (the other ranks only wait with it)."""
    with ExitStack() as stack:
        on_main(lambda: stack.enter_context(run.locked(existing=existing)))
        yield


def execute(cfg: SearchConfig, info: RunInfo, run: RunDir, *, resume: bool, stack: ExitStack) -> Candidate:
    """Check everything, create the run (unless ``resume``: the caller holds its lock), search, and return the
    final candidate; RUN_DIR/arch.json and result.json hold it. A new run's lock is entered on ``stack``, so the
    caller decides how long it is held (the CLI: until the command ends)."""
    ctx = Context.build(cfg, info, run)  # loads and checks everything before a run directory is created
    if not resume:
        stack.enter_context(hold_run(run, existing=False))
        on_main(lambda: run.create(info, cfg))
    handler = run.attach_log() if is_main() else None
    try:
        log.info("%s search: budget %.2f ms on %s (space %s: %.2f .. %.2f ms), run %s", info.kind, info.budget_ms,
                 info.table, cfg.space, ctx.budget.min_ms, ctx.budget.max_ms, run.path)
        log.info("%d torch thread(s) per process", cfg.threads)
        return random_search(ctx) if info.kind == "random" else nse_search(ctx)
    finally:
        if handler:
            logging.getLogger("nse_hw").removeHandler(handler)
            handler.close()
