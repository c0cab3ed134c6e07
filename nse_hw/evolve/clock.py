"""Wall and CPU seconds of a search, and the stop rule of a time-budgeted random search."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

CLOCKS = ("cpu", "wall")


@dataclass(frozen=True)
class Clock:
    """Started at construction; ``cpu`` is this process's CPU time (every thread), ``wall`` the elapsed time, each
    plus ``prior``: what the run's earlier processes had spent when they wrote the checkpoint this one resumed
    from. Work done after that checkpoint died with the kill and is done again here, so a resumed run reports
    what one uninterrupted run spends (and a time-budgeted random search stops where that run would)."""

    wall0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)
    prior: tuple[float, float] = (0.0, 0.0)  # (wall, cpu) seconds before this process
    resumes: int = 0
    known: bool = True  # False: resumed from a checkpoint that recorded no time, so it counts from the resume

    def resumed(self, ckpt: dict[str, Any] | None) -> Clock:
        """This clock continuing the run of checkpoint ``ckpt`` (itself if None: a new run)."""
        if ckpt is None:
            return self
        spent = ckpt.get("spent")
        if not isinstance(spent, dict):  # a checkpoint of an older version
            return replace(self, resumes=1, known=False)
        return replace(self, prior=(float(spent["wall"]), float(spent["cpu"])), resumes=int(spent["resumes"]) + 1,
                       known=spent["since"] == "start")

    def seconds(self, clock: str) -> float:
        if clock not in CLOCKS:
            raise ValueError(f"unknown clock {clock!r} (one of {', '.join(CLOCKS)})")
        if clock == "cpu":
            return self.prior[1] + time.process_time() - self.cpu0
        return self.prior[0] + time.perf_counter() - self.wall0

    def spent(self) -> dict[str, Any]:
        """For result.json and checkpoints: seconds since the run's start (``since: resume`` where an old
        checkpoint left the time before it unknown) and how many times it was resumed."""
        return {"wall": round(self.seconds("wall"), 2), "cpu": round(self.seconds("cpu"), 2),
                "since": "start" if self.known else "resume", "resumes": self.resumes}


def budget_spent(seconds: float, budget_s: float | None, done: int, *, limit: int) -> bool:
    """Stop a random search before its next architecture? With no time budget: after ``limit`` archs. With one:
    once ``seconds`` reach it, after at least one arch (the arch in flight finishes, so the search may overrun by
    less than one arch: the baseline never gets less compute than it was given)."""
    if budget_s is None:
        return done >= limit
    return done >= 1 and seconds >= budget_s
