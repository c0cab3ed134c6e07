"""Wall and CPU seconds of a search, and the stop rule of a time-budgeted random search."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

CLOCKS = ("cpu", "wall")


@dataclass(frozen=True)
class Clock:
    """Started at construction; ``cpu`` is this process's CPU time (every thread), ``wall`` the elapsed time."""

    wall0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)
    resumed: bool = False  # a resumed run counts from the resume only

    def seconds(self, clock: str) -> float:
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r} (one of {', '.join(CLOCKS)})")
        return time.process_time() - self.cpu0 if clock == "cpu" else time.perf_counter() - self.wall0

    def spent(self) -> dict[str, Any]:
        return {"wall": round(self.seconds("wall"), 2), "cpu": round(self.seconds("cpu"), 2),
                "since": "resume" if self.resumed else "start"}


def budget_spent(seconds: float, budget_s: float | None, done: int, *, limit: int) -> bool:
    """Stop a random search before its next architecture? With no time budget: after ``limit`` archs. With one:
    once ``seconds`` reach it, after at least one arch (the arch in flight finishes, so the search may overrun by
    less than one arch: the baseline never gets less compute than it was given)."""
    if budget_s is None:
        return done >= limit
    return done >= 1 and seconds >= budget_s
