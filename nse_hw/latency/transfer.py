"""Calibrated host -> device transfer: predict the entries a device table lacks from a small, explainable model.

Per key family (``mb``, ``rec``, ``conv``, ``head``, ``classifier``, ``join``; see :mod:`nse_hw.latency.features`)
a non-negative linear model (scipy ``nnls``) maps cost features computed from the key alone (MACs, bytes) and,
when a host table is given, the host latency to the device latency. It is fitted on the entries the device
table has (measured or imported; with host latency, only those the host table shares), minimising *relative*
squared error, and judged by its leave-one-out error (MAPE and the share within +-10%). With a host table two
candidates are fitted (key features only; key features + host ms) and the one with the lower leave-one-out MAPE
is kept; both errors are recorded. A family with no fit of its own borrows one where that is meaningful
(``rec`` from ``mb``: both are sums of conv MACs and activation bytes). A family with too few entries to fit
(a phone table holds one stem, one head and one classifier: those of its own skeleton) but at least one is
*anchored*: the device's key-feature ``mb`` model (its costs per MAC and per byte) times one factor, the
geometric mean of measured / model over that family's entries; so a 160-px stem or a 0.75-wide head is priced
by how its MACs and bytes differ from the measured one. Only a family with no entry at all has no basis and
is an error naming the unit to measure. Every prediction is marked
``source: predicted`` with the model that made it and any extrapolation (a family borrowed, a kernel size,
dilation or key kind the fit never saw, a feature that was zero in every fitted entry).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nse_hw.errors import NseError
from nse_hw.latency.features import KEY_FEATURES, key_family, key_features
from nse_hw.latency.keys import parse_key
from nse_hw.latency.siblings import nearest, residuals
from nse_hw.latency.table import LatencyTable, utc_now

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


class Unpredictable(NseError):
    """Keys no model can predict on this table (``keys``): their family has no entry to fit or anchor on."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


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
    rows = [features_of(k, host, names) for k in keys]
    x = np.array([[r[f] for f in names] for r in rows], dtype=float)
    used = [j for j, f in enumerate(names) if np.any(x[:, j] != 0)]
    need = ROWS_PER_FEATURE * len(used)
    if len(keys) < need:
        raise NseError(f"transfer fit of family {family!r} needs at least {need} entries "
                       f"({ROWS_PER_FEATURE} per feature); the tables share {len(keys)}")
    xu, yy = x[:, used], np.asarray(y, dtype=float)
    if np.any(yy <= 0):
        raise NseError(f"family {family!r} has entries with non-positive latency; cannot fit relative error")
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


def _fit_rows(device: LatencyTable, host: LatencyTable | None) -> dict[str, tuple[list[str], list[float]]]:
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


def _anchor_missing(model: TransferModel, rows: dict[str, tuple[list[str], list[float]]],
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


def fit_transfer(device: LatencyTable, host: LatencyTable | None = None, *, shape_correction: bool = True
                 ) -> TransferModel:
    """Fit every family that has enough entries; with ``host``, keep the better of key-only and key+host."""
    fams: dict[str, FamilyModel] = {}
    failures: dict[str, str] = {}
    key_rows, host_rows = _fit_rows(device, None), _fit_rows(device, host) if host is not None else {}
    for fam in FAMILY_FEATURES:
        cands: dict[str, FamilyModel] = {}
        why: list[str] = []
        for label, rows, h in (("key features", key_rows, None), ("key features + host ms", host_rows, host)):
            if fam in rows:
                try:
                    cands[label] = fit_family(fam, *rows[fam], host=h, shape_correction=shape_correction)
                except NseError as exc:  # too few rows for this candidate
                    why.append(str(exc))
        if cands:
            best = min(cands.values(), key=lambda m: m.loo_mape if m.loo_mape is not None else np.inf)
            best.candidates = {k: {"loo_mape": m.loo_mape, "loo_within_10": m.loo_within_10, "n_fit": m.n_fit}
                               for k, m in cands.items()}
            fams[fam] = best
        elif why:
            failures[fam] = why[0]
    host_name = (host.path.name if host.path else host.name) if host is not None else None
    model = TransferModel(fams, host_name, failures=failures)
    base = None
    if ANCHOR_ON in key_rows:  # anchors use the key-only model: a device table alone must predict
        try:
            base = fit_family(ANCHOR_ON, *key_rows[ANCHOR_ON], shape_correction=False)
        except NseError:
            base = None
    _anchor_missing(model, key_rows, base)
    return model


def _extrapolation(key: str, model: FamilyModel, borrowed: str | None, feats: dict[str, float]) -> list[str]:
    spec = parse_key(key)
    notes = [f"family {key_family(spec)} predicted with the {borrowed} model"] if borrowed else []
    if spec.kind not in model.seen.get("kinds", [spec.kind]):
        notes.append(f"kind {spec.kind} not among the fitted kinds {model.seen['kinds']}")
    if spec.op is not None and model.seen.get("k") and spec.op.k > max(model.seen["k"]):
        notes.append(f"k={spec.op.k} beyond the fitted kernels (max {max(model.seen['k'])})")
    if spec.op is not None and spec.op.d not in model.seen.get("d", [spec.op.d]):
        notes.append(f"dilation {spec.op.d} never fitted")
    notes += [f"feature {f} was zero in every fitted entry" for f in model.unfitted if feats.get(f)]
    if (a := model.anchored) and shape_of(key) not in {shape_of(k) for k in a["anchors"]}:
        notes.append(f"shape not measured: the {a['on']} model x{a['factor']:.3g}, anchored on "
                     f"{', '.join(a['anchors'][:3])}")
    return notes


def predict_key(key: str, model: TransferModel, host: LatencyTable | None = None) -> tuple[float, dict[str, Any]]:
    """Predicted ms of ``key`` and the entry fields that say how it was predicted."""
    fam = key_family(key)
    try:
        fm, borrowed = model.model_for(fam)
    except KeyError:
        raise NseError(f"no transfer model for family {fam!r} (key {key}); the device table needs at least "
                       f"{ROWS_PER_FEATURE * len(FAMILY_FEATURES[fam])} {fam} entries to fit one") from None
    used = [f for f, c in zip(fm.features, fm.coef, strict=True) if c]  # a zero coefficient needs no input
    feats = {**dict.fromkeys(fm.features, 0.0), **features_of(key, host, used)}
    ms = fm.predict(feats)
    if ms <= 0:
        raise NseError(f"transfer model of family {fm.family!r} predicts {ms:.4g} ms for {key}")
    label = f"{fm.family} (anchored on {fm.anchored['on']})" if fm.anchored else fm.family
    info: dict[str, Any] = {"model": label}
    if fm.loo_mape is not None:
        info["loo_mape"] = round(fm.loo_mape, 2)
    if (factor := fm.shape_factors.get(shape_of(key))) is not None:
        ms *= factor
        info["shape_factor"] = factor
    elif (sib := nearest(key, fm.siblings)) is not None:  # a shape the table never measured
        ms *= sib[1]
        info["sibling"] = {"key": sib[0], "factor": sib[1]}
    if notes := _extrapolation(key, fm, borrowed, feats):
        info["extrapolated"] = notes
    return ms, info


def _unpredictable(keys: list[str], model: TransferModel) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k in keys:
        fam = key_family(k)
        if fam not in model.families and model.borrow.get(fam) not in model.families:
            out.setdefault(fam, []).append(k)
    return out


def _fill(table: LatencyTable, keys: list[str], model: TransferModel, host: LatencyTable | None) -> list[str]:
    bad = _unpredictable(keys, model)
    if bad:
        fam, ks = next(iter(bad.items()))
        need = ROWS_PER_FEATURE * len(FAMILY_FEATURES[fam])
        have = sum(1 for k, e in table.entries.items() if key_family(k) == fam and e.get("source") in FIT_SOURCES)
        why = model.failures.get(fam, "")
        raise Unpredictable(f"cannot predict {sum(map(len, bad.values()))} keys (e.g. {ks[0]}): family {fam!r} "
                            f"has {have} measured/imported entries in {table.name}, a fit needs at least {need} "
                            f"(or one to anchor the {ANCHOR_ON} model on){'; ' + why if have and why else ''}; "
                            f"measure or import one {fam} unit, e.g. {ks[0]}", [k for v in bad.values() for k in v])
    for key in keys:
        ms, info = predict_key(key, model, host)
        table.set(key, ms=ms, source="predicted", **info)
    return keys


def transfer_table(device: LatencyTable, *, host: LatencyTable | None = None, keys: list[str] | None = None,
                   shape_correction: bool = True, allow_partial: bool = False) -> tuple[LatencyTable, TransferModel]:
    """A copy of ``device`` with every key of ``host`` (and ``keys``) it lacks predicted by a fitted model.

    Entries the device table measured or imported are kept; earlier predictions are redone with the new model.
    ``allow_partial``: keys of a family with no basis are left out (listed in ``meta.transfer.unpredictable``
    with what to measure) instead of failing the whole transfer; a later lookup of them is still an error.
    """
    targets = list(dict.fromkeys(list(host.entries if host is not None else []) + list(keys or [])))
    if not targets:
        raise NseError("nothing to predict: give a host table (--from) or a space (--space)")
    if host is not None and (absent := [k for k in targets if k not in host]):
        raise NseError(f"the host table {host.name} lacks {len(absent)} of the requested keys (e.g. {absent[0]}); "
                       "profile them on the host first, or transfer without --from")
    model = fit_transfer(device, host, shape_correction=shape_correction)
    if not model.families:
        why = model.failures.get("mb") or next(iter(model.failures.values()), "it has no measured/imported entries")
        raise NseError(f"device table {device.name} has too few entries to fit any family: {why}")
    out = LatencyTable(copy.deepcopy(device.meta), copy.deepcopy(device.entries), None)
    todo = [k for k in targets if out.entries.get(k, {}).get("source", "predicted") == "predicted"]
    skipped = _unpredictable(todo, model) if allow_partial else {}
    todo = [k for k in todo if k not in {x for v in skipped.values() for x in v}]
    _fill(out, todo, model, host)
    out.meta["transfer"] = {**model.to_dict(), "created": utc_now(),
                            "unpredictable": {f: {"keys": len(v), "e.g.": v[0], "measure": f"one {f} unit"}
                                              for f, v in skipped.items()},
                            "predicted": len(todo), "host_device": host.meta.get("device") if host else None,
                            "host_created": host.meta.get("created") if host else None}
    return out, model


def fill_missing(keys: list[str], device_table: LatencyTable) -> list[str]:
    """Predict (in place, ``source: predicted``) the ``keys`` the table lacks, with the transfer model stored in
    its metadata by :func:`transfer_table` (a table without one is an error that says how to make it).

    Returns the keys it filled. A model fitted with host latencies cannot fill keys here (no host table).
    """
    stored = device_table.meta.get("transfer")
    if not stored:
        raise NseError(f"table {device_table.name} has no transfer model to predict misses with; make one "
                       "with: nse-hw tables transfer --calibrate TABLE --space SPACE --out TABLE")
    missing = [k for k in dict.fromkeys(keys) if k not in device_table]
    model = TransferModel.from_dict(stored)
    base = model.families.get(ANCHOR_ON)
    rows = _fit_rows(device_table, None)
    if base is not None and base.anchored is None:  # a table written before anchoring: anchor from its entries
        _anchor_missing(model, rows, base)
    for fam, (ks, ys) in rows.items():  # a table written before sibling correction: residuals from its entries
        fm = model.families.get(fam)
        if fm and fm.shape_factors and not fm.siblings and not fm.anchored and "host_ms" not in fm.features:
            fm.siblings = residuals(ks, ys, [fm.predict(features_of(k, None, fm.features)) for k in ks])
    return _fill(device_table, missing, model, None)
