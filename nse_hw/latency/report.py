"""A whole network's predicted latency with its breakdown and provenance: what ``nse-hw latency predict`` prints
and :func:`nse_hw.predict_latency` returns.

Keys the table lacks are predicted by the table's transfer model when it has one (``fill``; each such row says
``source: predicted`` and is listed in ``filled_keys``; the table file is not changed); without ``fill``, or
without a model, a miss is an error naming the key. A prediction in another setup of the same phone is only
made when asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nse_hw.errors import NseError
from nse_hw.latency.keys import arch_components
from nse_hw.latency.predict import Prediction, predict
from nse_hw.latency.table import LatencyTable, table_precision
from nse_hw.space.arch import Arch

# What a report says of its table: enough to know what was predicted with, not the whole transfer model.
PROVENANCE = ("device", "runtime", "runtime_version", "threads", "batch", "statistic", "created", "tool_version",
              "spaces")


@dataclass(frozen=True)
class Row:
    """One table key of the network: the component it belongs to, how often it counts, its ms and source."""

    component: str  # stem, layer0, ..., head, classifier
    key: str
    count: int
    ms: float  # count x the entry's ms
    source: str  # measured, imported or predicted (by the transfer model, for this report only)

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "key": self.key, "count": self.count, "ms": self.ms,
                "source": self.source}


@dataclass(frozen=True)
class LatencyReport:
    """A network's predicted latency on one table.

    ``total_ms`` is the table's calibrated whole-network figure when the table carries a calibration (then
    ``calibrated`` is True), else the plain sum of its entries, ``lut_sum_ms``. ``rows`` hold every key in
    network order; ``components`` sums them per part of the network. ``setup_ms`` is the prediction in another
    setup of the same device (``setup``), only when one was asked for.
    """

    total_ms: float
    lut_sum_ms: float
    calibrated: bool
    rows: tuple[Row, ...]
    table: str
    precision: str
    provenance: dict[str, Any]
    filled_keys: tuple[str, ...] = ()  # keys the table lacked, predicted by its transfer model for this report
    setup: str | None = None
    setup_ms: float | None = None

    @property
    def components(self) -> list[tuple[str, float]]:
        """(component, ms) in network order: the per-layer breakdown."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.component] = out.get(r.component, 0.0) + r.ms
        return list(out.items())

    def to_dict(self) -> dict[str, Any]:
        return {"total_ms": self.total_ms, "lut_sum_ms": self.lut_sum_ms, "calibrated": self.calibrated,
                "table": self.table, "precision": self.precision, "provenance": dict(self.provenance),
                "filled_keys": list(self.filled_keys), "setup": self.setup, "setup_ms": self.setup_ms,
                "components": [{"name": n, "ms": ms} for n, ms in self.components],
                "rows": [r.to_dict() for r in self.rows]}


def fill_from_transfer(arch: Arch, table: LatencyTable) -> list[str]:
    """Predict (in ``table``, in memory) the keys of ``arch`` it lacks with its transfer model; the keys filled.

    A table without a transfer model fills nothing (a miss stays an error naming the key). A key no model can
    predict is an error naming the layer it belongs to.
    """
    if not table.meta.get("transfer"):
        return []
    from nse_hw.latency.transfer import Unpredictable, fill_missing

    comps = arch_components(arch, adds_in_ops=table.adds_in_ops)
    try:
        return fill_missing([k for c in comps for k, _ in c.keys], table)
    except Unpredictable as exc:
        layer = next(c.name for c in comps if any(k in exc.keys for k, _ in c.keys))
        raise NseError(f"{layer}: {exc}") from None


def latency_report(arch: Arch, table: LatencyTable, *, fill: bool = True, setup: str | None = None) -> LatencyReport:
    """Predict ``arch`` on ``table``: total, per-key rows with their sources, and the table's provenance.

    ``fill``: keys the table lacks are predicted by its transfer model (if it has one), else a miss is an error
    naming the key. ``setup``: also map the prediction to that setup of the device (the table's stored map).
    """
    filled = fill_from_transfer(arch, table) if fill else []
    pred: Prediction = predict(arch, table)  # a miss raises LatencyMiss naming every missing key
    rows = []
    for c in arch_components(arch, adds_in_ops=table.adds_in_ops):
        for key, n in c.keys:
            source = str(table.entries[key].get("source"))  # filled keys hold source: predicted
            rows.append(Row(c.name, key, n, n * table.ms(key), source))
    setup_ms = None
    if setup is not None:
        from nse_hw.latency.setup import arch_parts, setup_map

        setup_ms = setup_map(table, setup).apply(arch_parts(arch, table))
    own = table.meta.get("setup")
    prov = {k: table.meta[k] for k in PROVENANCE if k in table.meta}
    if isinstance(own, dict) and own.get("name"):
        prov["setup"] = own["name"]
    if cal := table.meta.get("calibration"):
        prov["calibration"] = {k: cal[k] for k in ("slope", "intercept_ms") if k in cal}
    return LatencyReport(pred.total_ms, pred.lut_sum_ms, bool(table.meta.get("calibration")), tuple(rows),
                         table.name, table_precision(table.meta), prov, tuple(filled), setup, setup_ms)
