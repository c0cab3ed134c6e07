"""Latency budgets: parse them, find the device's table, check the budget against what the space can reach."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table, table_for_device
from nse_hw.space import SearchSpace
from nse_hw.supernet import SpaceLatency

log = logging.getLogger(__name__)

DEFAULT_DEVICE = "pixel1"  # the one place the default device is named (latency_tables/<device>-<runtime>.json)
_LATENCY = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)?\s*")


def parse_latency(text: str) -> float:
    """'80ms', '80 ms', '0.08s', '80' (ms) -> 80.0; anything else, or a non-positive value, is a ValueError."""
    m = _LATENCY.fullmatch(str(text))
    if not m:
        raise ValueError(f"malformed latency {text!r} (examples: 80ms, '80 ms', 0.08s, 80)")
    value = float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"latency budget must be positive, got {text!r}")
    return value


def resolve_table(*, device: str | None, table: str | None, precision: str | None = None) -> LatencyTable:
    """The table to search against: ``table``, else the device's (default pixel1) table of ``precision``; a table
    of another precision than asked is refused (``precision`` None: the table's own, float32 for a device)."""
    if device and table:
        raise NseError("give either --device or --table, not both")
    if table:
        return load_table(table, precision=precision)
    return load_table(table_for_device(device or DEFAULT_DEVICE, precision=precision or "float32"),
                      precision=precision)


@dataclass(frozen=True)
class Budget:
    ms: float
    min_ms: float  # fastest architecture the space allows on this table
    max_ms: float  # slowest

    @property
    def effective_ms(self) -> float:
        """Where the search aims: the budget, or the slowest arch when the budget is above it."""
        return min(self.ms, self.max_ms)


def check_budget(space: SearchSpace, table: LatencyTable, budget_ms: float) -> tuple[SpaceLatency, Budget]:
    """The space's latency model; a budget below the fastest arch is an error, above the slowest a warning."""
    model = SpaceLatency(space, table)
    lo, hi = model.min_ms(), model.max_ms()
    if budget_ms < lo:
        raise NseError(f"latency budget {budget_ms:g} ms is below the fastest architecture of space {space.name} "
                       f"on {table.name} ({lo:.3f} ms; the slowest is {hi:.3f} ms)")
    if budget_ms > hi:
        log.warning("latency budget %g ms is above the slowest architecture of space %s on %s (%.3f ms; the "
                    "fastest is %.3f ms): every architecture fits, the search aims at the slowest",
                    budget_ms, space.name, table.name, hi, lo)
    return model, Budget(budget_ms, lo, hi)
