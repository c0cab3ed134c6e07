"""The `nse-hw` command line: a click group whose commands parse, load config and call library functions.

Bad input (an :class:`NseError` or ``ValueError`` from the library, or a usage error) becomes one line on stderr
and exit code 2; set NSE_HW_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from nse_hw import __version__
from nse_hw.cpushare import claim_pending
from nse_hw.errors import NseError


class CliGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (NseError, ValueError) as exc:
            if os.environ.get("NSE_HW_DEBUG"):
                raise
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = sys.argv[1:] if args is None else list(args)
        bad = next((a for a in argv if isinstance(a, str) and not _is_utf8(a)), None)
        if bad is not None:  # up front: such a path would break the logs (and JSON files) only after the work
            click.echo(f"error: argument {_show_bytes(bad)} is not valid UTF-8; use a UTF-8 name", err=True)
            sys.exit(2)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:  # usage errors included: one line, exit 2
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _is_utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of argv arrive as lone surrogates
        return False
    return True


def _show_bytes(arg: str) -> str:
    """The argument as the bytes the user typed: 'runs/\\xff'."""
    try:
        return repr(os.fsencode(arg))[1:]
    except UnicodeEncodeError:
        return ascii(arg)


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nse-hw")
@click.option("-v", "--verbose", count=True, help="Debug log output too (e.g. the step at which each op is pruned).")
def cli(verbose: int) -> None:
    """Hardware-aware Neural Search-space Evolution: profile, search, train, export."""
    # Our loggers only: litert-torch logs every lowered op and onnxscript every pass on the root logger.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s"))
    for name in ("nse_hw",):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(logging.DEBUG if verbose else logging.INFO)  # INFO by default: rounds, epochs, files written
        lg.propagate = False


def _register() -> None:
    from nse_hw.cli import export, latency, profile, search, tables, train

    for mod in (latency, profile, train, export, tables, search):
        for cmd in mod.COMMANDS:
            cli.add_command(cmd)


THREAD_COMMANDS = ("search", "train")  # the commands that choose a default thread count


def console_command(argv: list[str]) -> str | None:
    """The command of an ``nse-hw`` console run (or ``python -m nse_hw.cli``, whose argv[0] is "-m" while the
    package imports) that will choose a default thread count, else None (other commands, --help, imports of
    this package by other programs)."""
    if not argv or not (os.path.basename(argv[0]) == "nse-hw" or argv[0] == "-m"):
        return None
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    if command not in THREAD_COMMANDS or any(a in ("-h", "--help") for a in argv[1:]):
        return None
    return command


if (_command := console_command(sys.argv)) is not None:
    claim_pending(_command)  # before the commands' imports (torch, seconds): see nse_hw.cpushare
_register()


def main() -> None:
    cli.main(prog_name="nse-hw")
