"""Setups: one phone model timed with another runtime build / benchmark tool, mapped from a table's block sums.

A table's entries represent one *setup* (``meta.setup``: runtime build, tool, cores; e.g. the 2018 ProxylessNAS
block table). Public end-to-end figures of the same phone often come from another setup (Google's MobileNetV2
README: 73.8 ms for the network the 2018 setup times at ~90 ms). A setup map turns this table's prediction
into that setup's, and is stored in ``meta.setups[NAME]`` with what it was fitted and judged on; a prediction
in another setup is always asked for by name (``latency predict --setup NAME``), never applied silently.

Two forms, both fitted on relative error over whole networks the setup measured:

* ``constant``  total = f * lut_sum
* ``parts``     total = a * compute + b * memory + c * overhead, where each entry's latency is split by the
  table's transfer model into its MAC terms (compute), byte terms (memory) and constant (overhead), in
  proportion, so the parts of an entry always sum to its ms (imported entries included). Two setups of one
  phone differ in kernel efficiency and in memory traffic, and these move differently with width.
* ``parts+weights``  the same plus d * weights_mb, the network's parameter bytes (MB). Blocks timed one at a
  time keep their weights in cache; a whole network re-reads every weight from DRAM each inference, a cost no
  block entry holds and that does not shrink with the input (it dominates wide networks at small inputs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nse_hw.errors import NseError
from nse_hw.latency.features import key_family, key_features
from nse_hw.latency.keys import arch_components
from nse_hw.latency.table import LatencyTable, table_precision
from nse_hw.space.arch import Arch
from nse_hw.space.size import estimate

PARTS = ("compute", "memory", "overhead")
FORMS = ("constant", "parts", "parts+weights")
TERMS = {"parts": PARTS, "parts+weights": (*PARTS, "weights_mb")}
_BYTES = {"float32": 4, "int8": 1}
_GROUP = {"dense_mmacs": "compute", "dw_k3_mmacs": "compute", "dw_k5_mmacs": "compute",
          "dw_k7p_mmacs": "compute", "io_mb": "memory", "mid_mb": "memory", "se_mb": "memory",
          "hs_mb": "memory", "const": "overhead"}


def split_entry(key: str, ms: float, model: dict[str, Any]) -> dict[str, float]:
    """``ms`` of ``key`` split into :data:`PARTS` in proportion to the stored transfer model's terms."""
    fams = model.get("families", {})
    fam = key_family(key)
    fm = fams.get(fam) or fams.get(model.get("borrow", {}).get(fam, ""))
    if fm is None:
        raise NseError(f"cannot split {key} into compute/memory/overhead: the table's transfer model has no "
                       f"{fam!r} family")
    feats = {"const": 1.0, **key_features(key)}
    terms = {p: 0.0 for p in PARTS}
    for f, c in zip(fm["features"], fm["coef"], strict=True):
        if f in _GROUP:
            terms[_GROUP[f]] += c * feats.get(f, 0.0)
    total = sum(terms.values())
    if total <= 0:
        raise NseError(f"cannot split {key}: its model terms sum to {total:.3g}")
    return {p: ms * v / total for p, v in terms.items()}


def arch_parts(arch: Arch, table: LatencyTable) -> dict[str, float]:
    """The LUT sum of ``arch`` split into :data:`PARTS` (the table must hold every key and a transfer model),
    and ``weights_mb``: its parameters in the table's precision, in MB."""
    model = table.meta.get("transfer")
    if not model:
        raise NseError(f"table {table.name} has no transfer model to split entries with")
    parts = dict.fromkeys(PARTS, 0.0)
    for comp in arch_components(arch, adds_in_ops=table.adds_in_ops):
        for key, n in comp.keys:
            for p, v in split_entry(key, table.ms(key), model).items():
                parts[p] += n * v
    return {**parts, "weights_mb": estimate(arch).params * _BYTES.get(table_precision(table.meta), 4) / 1e6}


@dataclass(frozen=True)
class SetupMap:
    form: str  # one of FORMS
    coef: dict[str, float]  # constant: {"factor"}; otherwise one per TERMS[form]
    n_fit: int
    fit_mape: float

    def apply(self, parts: dict[str, float]) -> float:
        if self.form == "constant":
            return self.coef["factor"] * sum(parts[p] for p in PARTS)
        return sum(self.coef[p] * parts[p] for p in TERMS[self.form])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SetupMap:
        try:
            return cls(str(d["form"]), {k: float(v) for k, v in d["coef"].items()}, int(d["n_fit"]),
                       float(d["fit_mape"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NseError(f"stored setup map is malformed ({exc})") from None


def fit_setup(parts: list[dict[str, float]], measured: list[float], form: str) -> SetupMap:
    """Fit a setup map on networks (their parts, their measured ms in that setup), relative error."""
    if form not in FORMS:
        raise NseError(f"unknown setup form {form!r} (one of {', '.join(FORMS)})")
    y = np.asarray(measured, dtype=float)
    if y.size == 0 or np.any(y <= 0):
        raise NseError("a setup map needs measured networks with positive latency")
    if form == "constant":
        sums = np.array([sum(p[k] for k in PARTS) for p in parts])
        factor = float(np.exp(np.mean(np.log(y / sums))))
        m = SetupMap(form, {"factor": factor}, int(y.size), 0.0)
    else:
        terms = TERMS[form]
        if y.size < 2 * len(terms):
            raise NseError(f"a {form} setup map needs >= {2 * len(terms)} networks, got {y.size}")
        x = np.array([[p[k] for k in terms] for p in parts]) / y[:, None]
        coef, _ = nnls(x, np.ones_like(y))
        m = SetupMap(form, dict(zip(terms, map(float, coef), strict=True)), int(y.size), 0.0)
    err = [abs(m.apply(p) / v - 1) * 100 for p, v in zip(parts, y, strict=True)]
    return SetupMap(m.form, m.coef, m.n_fit, float(np.mean(err)))


def setup_map(table: LatencyTable, name: str) -> SetupMap:
    """The stored map of setup ``name`` (an error listing the table's setups when it has none of that name)."""
    setups = table.meta.get("setups") or {}
    if name not in setups:
        own = table.meta.get("setup", {}).get("name") if isinstance(table.meta.get("setup"), dict) else None
        known = ", ".join(sorted(setups)) or "none"
        raise NseError(f"table {table.name} has no map to setup {name!r} (its entries are setup {own!r}; "
                       f"maps: {known})")
    return SetupMap.from_dict(setups[name]["map"])
