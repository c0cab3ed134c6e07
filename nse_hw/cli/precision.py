"""``--precision float32|int8``: the one option naming what a latency table's entries were measured in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from nse_hw.latency.table import PRECISIONS


def precision_option(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--precision``: a table of another precision than asked is refused (``load_table(precision=...)``)."""
    kwargs.setdefault("help", "Precision of the latency table: float32 or int8 (a table of the other one is refused).")
    return click.option("--precision", type=click.Choice(PRECISIONS), metavar="|".join(PRECISIONS), **kwargs)
