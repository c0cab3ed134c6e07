"""Progress bars for long work: tqdm, redrawn every 0.1 s on a terminal but only every 30 s into a log file."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # a redirected stderr keeps every redraw: a bar per 30 s, not 10 per second


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` that does not flood logs when stderr is not a terminal."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def time_left(elapsed_s: float, done: int, done_before: int, total: int) -> float | None:
    """Seconds the rest of ``total`` units takes at this process's pace so far: ``elapsed_s`` for the units from
    ``done_before`` (those of the run it resumed) to ``done``. None before its first unit."""
    if done <= done_before:
        return None
    return elapsed_s / (done - done_before) * max(0, total - done)


def format_duration(seconds: float) -> str:
    """Round to what a person plans by: ``40 s``, ``12 min``, ``1 h 05 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    m = round(s / 60)
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"
