"""Predict a whole network's latency from a table: the sum of its units, then the table's calibration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nse_hw.latency.keys import Component, arch_components
from nse_hw.latency.table import LatencyTable
from nse_hw.space.arch import Arch


@dataclass(frozen=True)
class Prediction:
    total_ms: float  # calibrated when the table carries a calibration, else == lut_sum_ms
    lut_sum_ms: float
    rows: list[tuple[str, str, float]]  # (component, its keys as text, ms)

    def to_dict(self) -> dict[str, Any]:
        return {"total_ms": self.total_ms, "lut_sum_ms": self.lut_sum_ms,
                "layers": [{"name": n, "keys": k, "ms": ms} for n, k, ms in self.rows]}


def calibrate(lut_sum_ms: float, table: LatencyTable) -> float:
    """Apply the table's whole-network calibration (affine in the LUT sum), if it has one."""
    cal = table.meta.get("calibration")
    if not cal:
        return lut_sum_ms
    return float(cal["slope"]) * lut_sum_ms + float(cal["intercept_ms"])


def predict(arch: Arch, table: LatencyTable) -> Prediction:
    return predict_components(arch_components(arch, adds_in_ops=table.adds_in_ops), table)


def predict_components(comps: list[Component], table: LatencyTable) -> Prediction:
    """The sum of ``comps`` (an arch's, plus any units an importer priced beside it), then the calibration."""
    table.require([k for c in comps for k, _ in c.keys])
    rows = []
    for c in comps:
        ms = sum(n * table.ms(k) for k, n in c.keys)
        label = " + ".join(k if n == 1 else f"{n}x {k}" for k, n in c.keys)
        rows.append((c.name, label, ms))
    lut_sum = sum(r[2] for r in rows)
    return Prediction(calibrate(lut_sum, table), lut_sum, rows)


def predict_model(comps: list[Component], table: LatencyTable, *, fill: bool = True) -> tuple[Prediction, list[str]]:
    """Price ``comps`` (``arch_components(arch)`` or ``ImportedModel.components()``) on ``table``: keys it lacks
    are first filled in memory (ReLU units from their ReLU6 twins, the rest by the table's transfer model; see
    :func:`nse_hw.latency.variants.fill_keys`) unless ``fill`` is False. Returns the prediction and the keys that
    were filled (``source: predicted`` in ``table.entries``); a key nothing can price is a LatencyMiss."""
    from nse_hw.latency.variants import fill_keys

    filled = fill_keys([k for c in comps for k, _ in c.keys], table) if fill else []
    return predict_components(comps, table), filled
