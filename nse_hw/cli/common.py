"""Small shared pieces of the CLI: option types and output helpers."""

from __future__ import annotations

import json
from typing import Any

import click

from nse_hw.space import Arch, load_arch


def positive_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be >= 1, got {value}", ctx, param)
    return value


def read_arch(path: str) -> Arch:
    return load_arch(path)  # ValueError -> one-line error via the group


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=1))
