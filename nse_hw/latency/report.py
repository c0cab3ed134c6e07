"""A whole network's predicted latency with its breakdown and provenance: what ``nse-hw latency predict`` prints
and :func:`nse_hw.predict_latency` returns.

Keys the table lacks are predicted by the table's transfer model when it has one (``fill``; each such row says
``source: predicted`` and is listed in ``filled_keys``; the table file is not changed); without ``fill``, or
without a model, a miss is an error naming the key. A prediction in another setup of the same phone is only
made when asked for by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nse_hw.errors import NseError
from nse_hw.latency.keys import Component, arch_components
from nse_hw.latency.predict import Prediction, predict_components
from nse_hw.latency.table import LatencyTable, table_precision
from nse_hw.space.arch import Arch

if TYPE_CHECKING:
    from nse_hw.latency.recognise import ImportedModel

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


def report_components(arch: Arch, table: LatencyTable, imported: ImportedModel | None = None) -> list[Component]:
    """What a report prices: ``arch``'s components, or an imported model's (its arch's units plus the units the
    importer priced beside them)."""
    if imported is not None:
        return imported.components(adds_in_ops=table.adds_in_ops)
    return arch_components(arch, adds_in_ops=table.adds_in_ops)


def fill_components(comps: list[Component], table: LatencyTable) -> list[str]:
    """Fill (in ``table``, in memory) the keys of ``comps`` it lacks: ReLU units from their ReLU6 twins, the rest
    with its transfer model if it has one (:func:`nse_hw.latency.variants.fill_keys`); the keys filled. A table
    without a model fills no other key (a miss stays an error naming the key); a key no model can predict is an
    error naming the component it belongs to."""
    from nse_hw.latency.transfer import Unpredictable
    from nse_hw.latency.variants import fill_keys, relu6_twin

    try:
        return fill_keys([k for c in comps for k, _ in c.keys], table)
    except Unpredictable as exc:
        name = next(c.name for c in comps if any(k in exc.keys or relu6_twin(k) in exc.keys for k, _ in c.keys))
        raise NseError(f"{name}: {exc}") from None


def latency_report(arch: Arch, table: LatencyTable, *, fill: bool = True, setup: str | None = None,
                   imported: ImportedModel | None = None) -> LatencyReport:
    """Predict ``arch`` (or the ``imported`` model whose arch it is) on ``table``: total, per-key rows with their
    sources, and the table's provenance.

    ``fill``: keys the table lacks are predicted (:func:`fill_components`), else a miss is an error naming the
    key. ``setup``: also map the prediction to that setup of the device (the table's stored map; arch units only).
    """
    comps = report_components(arch, table, imported)
    filled = fill_components(comps, table) if fill else []
    pred: Prediction = predict_components(comps, table)  # a miss raises LatencyMiss naming every missing key
    rows = []
    for c in comps:
        for key, n in c.keys:
            source = str(table.entries[key].get("source"))  # filled keys hold source: predicted
            rows.append(Row(c.name, key, n, n * table.ms(key), source))
    setup_ms = None
    if setup is not None:
        from nse_hw.latency.setup import arch_parts, setup_map

        if imported is not None and imported.extras:
            raise NseError(f"--setup maps arch units only; this model also has "
                           f"{', '.join(c.name for c in imported.extras)}")
        setup_ms = setup_map(table, setup).apply(arch_parts(arch, table))
    own = table.meta.get("setup")
    prov = {k: table.meta[k] for k in PROVENANCE if k in table.meta}
    if isinstance(own, dict) and own.get("name"):
        prov["setup"] = own["name"]
    if cal := table.meta.get("calibration"):
        prov["calibration"] = {k: cal[k] for k in ("slope", "intercept_ms") if k in cal}
    return LatencyReport(pred.total_ms, pred.lut_sum_ms, bool(table.meta.get("calibration")), tuple(rows),
                         table.name, table_precision(table.meta), prov, tuple(filled), setup, setup_ms)
