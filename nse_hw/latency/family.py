"""Per-family latency models of a device table: what :mod:`nse_hw.latency.transfer` fits and predicts with.

A family's model is a non-negative linear map from key features (MACs, bytes; :mod:`nse_hw.latency.features`)
and, optionally, the host latency to the device latency, fitted on relative error (``fit_family``). A family too
small to fit is *anchored* on the device's mb model by one factor (``anchor_family``); a family with no entry
may take that factor from a donor table (``borrow_anchor``). See transfer.py for how they are used.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nse_hw.errors import NseError
from nse_hw.latency.features import KEY_FEATURES, key_family, key_features
from nse_hw.latency.keys import parse_key
from nse_hw.latency.siblings import residuals
from nse_hw.latency.table import LatencyTable

log = logging.getLogger(__name__)

FAMILY_FEATURES: dict[str, tuple[str, ...]] = {
    "mb": ("const",) + KEY_FEATURES,
    "rec": ("const",) + KEY_FEATURES,
    "conv": ("const", "dense_mmacs", "io_mb"),
    "head": ("const", "dense_mmacs", "io_mb"),
    "classifier": ("const", "dense_mmacs", "io_mb"),
    "join": ("const", "io_mb"),
}
BORROW = {"rec": "mb"}
ROWS_PER_FEATURE = 2  # a fit needs at least this many entries per feature it uses
FIT_SOURCES = ("measured", "imported")
ANCHOR_ON = "mb"  # the model a family too small to fit is scaled from


@dataclass
class FamilyModel:
    """``ms = sum(coef[i] * feature[i])`` for one family, with its leave-one-out error and what it was fitted on."""

    family: str
    features: list[str]
    coef: list[float]
    n_fit: int
    loo_mape: float | None  # percent; None for a family anchored on a single entry (nothing to leave out)
    loo_within_10: float | None  # percent of fitted entries whose leave-one-out prediction is within +-10%
    seen: dict[str, list[Any]] = field(default_factory=dict)  # kinds, k, d of the fitted keys
    unfitted: list[str] = field(default_factory=list)  # features that were zero in every fitted entry
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {loo_mape, loo_within_10}
    loo_mape_uncorrected: float | None = None  # without the shape correction
    loo_within_10_uncorrected: float | None = None
    shape_factors: dict[str, float] = field(default_factory=dict)  # shape -> measured / fitted (geometric mean)
    siblings: dict[str, float] = field(default_factory=dict)  # fitted op key -> measured / fitted (siblings.py)
    anchored: dict[str, Any] | None = None  # {"on": family, "factor": r, "anchors": [keys]} for an anchored family

    def predict(self, feats: dict[str, float]) -> float:
        """The linear model alone (no shape correction)."""
        return float(sum(c * feats[f] for f, c in zip(self.features, self.coef, strict=True)))


@dataclass
class TransferModel:
    families: dict[str, FamilyModel]
    host_table: str | None = None
    borrow: dict[str, str] = field(default_factory=lambda: dict(BORROW))
    failures: dict[str, str] = field(default_factory=dict)  # family -> why it could not be fitted

    def model_for(self, family: str) -> tuple[FamilyModel, str | None]:
        """The model of ``family`` and, if borrowed, the family it came from."""
        if family in self.families:
            return self.families[family], None
        if (src := self.borrow.get(family)) in self.families:
            return self.families[src], src
        raise KeyError(family)

    def to_dict(self) -> dict[str, Any]:
        return {"families": {k: asdict(v) for k, v in self.families.items()}, "host_table": self.host_table,
                "borrow": self.borrow, "not_fitted": self.failures}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransferModel:
        try:
            fams = {k: FamilyModel(**v) for k, v in d["families"].items()}
            return cls(fams, d.get("host_table"), dict(d.get("borrow", BORROW)), dict(d.get("not_fitted", {})))
        except (KeyError, TypeError) as exc:
            raise NseError(f"stored transfer model is malformed ({exc})") from None


def features_of(key: str, host: LatencyTable | None, names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Key features plus ``const`` = 1 and, if asked for, ``host_ms`` from ``host``."""
    f: dict[str, float] = {"const": 1.0, **key_features(key)}
    if "host_ms" in names:
        if host is None or key not in host:
            raise NseError(f"the transfer model needs the host latency of {key}, and the host table "
                           f"{host.name if host else '(none given; the model was fitted with one)'} has no entry "
                           "for it")
        f["host_ms"] = host.ms(key)
    return f


def _nnls_relative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares on relative error: rows scaled by 1/y, columns scaled to unit max."""
    a = x / y[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale, np.ones(len(y)), maxiter=50 * x.shape[1])
    return coef / scale


def shape_of(key: str) -> str:
    """The position part of a key (``in=...|out=...|s=...``): what same-shape siblings share."""
    return key.split("|", 1)[1]


def _shape_factors(shapes: list[str], y: np.ndarray, pred: np.ndarray, skip: int | None = None) -> dict[str, float]:
    """Per shape, the geometric mean of measured / fitted over its entries (leaving out entry ``skip``)."""
    logs: dict[str, list[float]] = {}
    for j, sh in enumerate(shapes):
        if j != skip:
            logs.setdefault(sh, []).append(float(np.log(y[j] / pred[j])))
    return {sh: float(np.exp(np.mean(v))) for sh, v in logs.items()}


def _loo(x: np.ndarray, y: np.ndarray, shapes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Relative leave-one-out errors of the fit, plain and with the shape correction from the other entries."""
    plain, corrected = np.empty(len(y)), np.empty(len(y))
    idx = np.arange(len(y))
    for i in idx:
        coef = _nnls_relative(x[idx != i], y[idx != i])
        pred = x @ coef
        factor = _shape_factors(shapes, y, np.maximum(pred, 1e-12), skip=i).get(shapes[i], 1.0)
        plain[i] = (pred[i] - y[i]) / y[i]
        corrected[i] = (pred[i] * factor - y[i]) / y[i]
    return plain, corrected


def _seen(keys: list[str]) -> dict[str, list[Any]]:
    specs = [parse_key(k) for k in keys]
    ops = [s.op for s in specs if s.op is not None]
    return {"kinds": sorted({s.kind for s in specs}), "k": sorted({o.k for o in ops}), "d": sorted({o.d for o in ops})}


def fit_family(family: str, keys: list[str], y: list[float], *, host: LatencyTable | None = None,
               shape_correction: bool = True) -> FamilyModel:
    """Fit one family's model on ``keys`` -> ``y`` ms (features of the family, plus host ms if ``host``).

    ``shape_correction``: multiply predictions at a shape (``in|out|s``) the fit has entries for by the geometric
    mean of measured / fitted over those entries (the fit's leave-one-out error is then computed that way too).
    """
    names = list(FAMILY_FEATURES[family]) + (["host_ms"] if host is not None else [])
    kept = [(k, v) for k, v in zip(keys, y, strict=True) if v > 0]
    if len(kept) < len(keys):  # timed at or below the invoke overhead (net 0 ms): nothing to say about relative error
        if not kept:
            raise NseError(f"family {family!r} has no entry above 0 ms; cannot fit relative error")
        log.info("family %r: %d entries at 0 ms net of the invoke overhead left out of the fit", family,
                 len(keys) - len(kept))
        keys, y = [k for k, _ in kept], [v for _, v in kept]
    rows = [features_of(k, host, names) for k in keys]
    x = np.array([[r[f] for f in names] for r in rows], dtype=float)
    used = [j for j, f in enumerate(names) if np.any(x[:, j] != 0)]
    need = ROWS_PER_FEATURE * len(used)
    if len(keys) < need:
        raise NseError(f"transfer fit of family {family!r} needs at least {need} entries "
                       f"({ROWS_PER_FEATURE} per feature); the tables share {len(keys)}")
    xu, yy = x[:, used], np.asarray(y, dtype=float)
    coef_u = _nnls_relative(xu, yy)
    shapes = [shape_of(k) for k in keys]
    plain, corrected = (np.abs(e) for e in _loo(xu, yy, shapes))
    errs = corrected if shape_correction else plain
    coef = np.zeros(len(names))
    coef[used] = coef_u
    factors = _shape_factors(shapes, yy, np.maximum(xu @ coef_u, 1e-12)) if shape_correction else {}
    sibs = residuals(keys, yy, xu @ coef_u) if shape_correction else {}
    return FamilyModel(family, names, [float(c) for c in coef], len(keys), float(errs.mean() * 100),
                       float((errs <= 0.10).mean() * 100), _seen(keys),
                       [names[j] for j in range(len(names)) if j not in used],
                       loo_mape_uncorrected=float(plain.mean() * 100),
                       loo_within_10_uncorrected=float((plain <= 0.10).mean() * 100),
                       shape_factors={k: round(v, 5) for k, v in factors.items()}, siblings=sibs)


def fit_rows(device: LatencyTable, host: LatencyTable | None) -> dict[str, tuple[list[str], list[float]]]:
    rows: dict[str, tuple[list[str], list[float]]] = {}
    for key, e in device.entries.items():
        if e.get("source") not in FIT_SOURCES or (host is not None and key not in host):
            continue
        ks, ys = rows.setdefault(key_family(key), ([], []))
        ks.append(key)
        ys.append(float(e["ms"]))
    return rows


def anchor_family(family: str, keys: list[str], y: list[float], base: FamilyModel) -> FamilyModel:
    """``family`` priced as ``factor * base``: ``factor`` = geometric mean of measured / base over ``keys``.

    ``base`` must use key features only (no host ms: a device table alone must be able to predict). The
    leave-one-out error (each entry by the factor of the others) needs two entries; with one it is None.
    """
    if "host_ms" in base.features and base.coef[base.features.index("host_ms")]:
        raise NseError(f"cannot anchor family {family!r} on the {base.family} model: it uses host latency")
    feats = [{"const": 1.0, **key_features(k)} for k in keys]
    pred = np.array([base.predict({**dict.fromkeys(base.features, 0.0), **f}) for f in feats])
    yy = np.asarray(y, dtype=float)
    if np.any(pred <= 0) or np.any(yy <= 0):
        raise NseError(f"cannot anchor family {family!r} on the {base.family} model (non-positive cost)")
    logs = np.log(yy / pred)
    factor = float(np.exp(logs.mean()))
    loo = loo10 = None
    if len(keys) > 1:
        others = np.exp((logs.sum() - logs) / (len(keys) - 1))
        errs = np.abs(pred * others / yy - 1)
        loo, loo10 = float(errs.mean() * 100), float((errs <= 0.10).mean() * 100)
    return FamilyModel(family, list(base.features), [c * factor for c in base.coef], len(keys), loo, loo10,
                       _seen(keys), list(base.unfitted),
                       anchored={"on": base.family, "factor": round(factor, 5), "anchors": list(keys)})


def borrow_anchor(family: str, donor: LatencyTable, base: FamilyModel) -> FamilyModel:
    """``family``, of which this device has no entry, as ``factor * base`` (``base``: this device's key-feature
    mb model), with the factor ``donor`` shows between its own entries of ``family`` and its own mb model."""
    rows = fit_rows(donor, None)
    if family not in rows or ANCHOR_ON not in rows:
        raise NseError(f"donor table {donor.name} has no measured/imported {family} and {ANCHOR_ON} entries to "
                       "take an anchor factor from")
    try:
        ref = anchor_family(family, *rows[family], fit_family(ANCHOR_ON, *rows[ANCHOR_ON], shape_correction=False))
    except NseError as exc:
        raise NseError(f"donor table {donor.name} gives no anchor factor for {family!r}: {exc}") from None
    f = ref.anchored["factor"] if ref.anchored else 1.0
    name = donor.path.name if donor.path else donor.name
    return FamilyModel(family, list(base.features), [c * f for c in base.coef], 0, None, None, ref.seen,
                       list(base.unfitted), anchored={"on": base.family, "factor": f, "anchors": [], "from": name,
                                                      "donor_loo_mape": ref.loo_mape, "donor_n": ref.n_fit})


def anchor_missing(model: TransferModel, rows: dict[str, tuple[list[str], list[float]]],
                    base: FamilyModel | None) -> None:
    """Anchor every family of ``rows`` the model has no fit for (in place; a failure is recorded)."""
    for fam in FAMILY_FEATURES:
        if fam in model.families or fam in model.borrow or fam not in rows or fam == ANCHOR_ON:
            continue
        if base is None:
            model.failures[fam] = f"{model.failures.get(fam, 'too few entries')}; no {ANCHOR_ON} model to anchor on"
            continue
        try:
            model.families[fam] = anchor_family(fam, *rows[fam], base)
        except NseError as exc:
            model.failures[fam] = str(exc)
            continue
        model.failures.pop(fam, None)
