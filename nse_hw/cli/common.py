"""Small shared pieces of the CLI: option types and output helpers."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import click

from nse_hw.space import Arch, load_arch
from nse_hw.train import dist
from nse_hw.train.threads import settle_threads, torch_threads

log = logging.getLogger("nse_hw.cli")

RUN_DIR_KEY = "nse_hw.run_dir"  # click's ctx.meta: the run directory a failed distributed run resumes from


def positive_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be >= 1, got {value}", ctx, param)
    return value


def threads_option(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--threads N``, the same option (and check) on every command that runs torch or a runtime."""
    return click.option("--threads", type=int, metavar="N", callback=positive_threads, **kwargs)


def exit_on_lost_rank(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Under torchrun: a collective that timed out or lost a rank ends this rank with one ``error:`` line naming
    the rank and the wait limit (and the run to --resume, from ``ctx.meta[RUN_DIR_KEY]``) and exit code 1, not
    a wall of backend traceback. Every other error passes through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:
            ctx = click.get_current_context(silent=True)
            msg = dist.failure_message(exc, resume_dir=ctx.meta.get(RUN_DIR_KEY) if ctx else None)
            if msg is None:
                raise
            # on a line of its own: the ranks share one stderr, and another's progress bar may have left a partial line
            click.echo(f"\nerror: {msg}", err=True)
            raise SystemExit(1) from None

    return wrapper


def read_arch(path: str) -> Arch:
    return load_arch(path)  # ValueError -> one-line error via the group


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=1))


def use_threads(given: int | None, *, recorded: int | None, resume: bool) -> int:
    """Settle a run's thread count (see :func:`nse_hw.train.threads.settle_threads`: shared with the other nse-hw
    jobs on these cores, registered while the command runs) and apply it until the command ends. The caller
    records the count in the run."""
    ctx = click.get_current_context()
    n = ctx.with_resource(settle_threads(given, recorded=recorded, resume=resume, command=ctx.info_name or "",
                                         logger=log))
    ctx.with_resource(torch_threads(n))
    return n


def other_cpu_warning(table: Any) -> str | None:
    """The one-line warning for a host table that is not (known to be) this CPU's, or None (nse_hw.hostcpu)."""
    from nse_hw.hostcpu import cpu_warning, this_cpu

    return cpu_warning(table.meta, this_cpu(), str(table.path or table.name))


def warn_other_cpu(table: Any) -> str | None:
    """Print :func:`other_cpu_warning` on stderr (``warning: ...``) and return it."""
    if msg := other_cpu_warning(table):
        click.echo(f"warning: {msg}", err=True)
    return msg
