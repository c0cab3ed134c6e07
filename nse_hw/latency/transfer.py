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
by how its MACs and bytes differ from the measured one. A family with no entry at all may take its factor from
a *donor* table of the same runtime that has entries of it (``tables transfer --anchor-from``; e.g. the Note10
tables, which never timed an add alone, priced the way the Pixel 1's real adds relate to its own mb model);
the entries say so. Without a donor a family with no entry has no basis and is an error naming the unit to
measure. Every prediction is marked
``source: predicted`` with the model that made it and any extrapolation (a family borrowed, a kernel size,
dilation or key kind the fit never saw, a feature that was zero in every fitted entry).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from nse_hw.errors import NseError
from nse_hw.latency.family import (
    ANCHOR_ON,
    FAMILY_FEATURES,
    FIT_SOURCES,
    ROWS_PER_FEATURE,
    FamilyModel,
    TransferModel,
    anchor_missing,
    borrow_anchor,
    features_of,
    fit_family,
    fit_rows,
    shape_of,
)
from nse_hw.latency.features import key_family
from nse_hw.latency.keys import parse_key
from nse_hw.latency.siblings import nearest, residuals
from nse_hw.latency.table import LatencyTable, utc_now

__all__ = ["FamilyModel", "TransferModel", "Unpredictable", "fill_missing", "fit_transfer", "predict_key",
           "shape_of", "transfer_table"]


class Unpredictable(NseError):
    """Keys no model can predict on this table (``keys``): their family has no entry to fit or anchor on."""

    def __init__(self, message: str, keys: list[str]) -> None:
        super().__init__(message)
        self.keys = keys


def fit_transfer(device: LatencyTable, host: LatencyTable | None = None, *, shape_correction: bool = True,
                 donors: tuple[LatencyTable, ...] = ()) -> TransferModel:
    """Fit every family that has enough entries; with ``host``, keep the better of key-only and key+host.
    A family with no entry at all takes its anchor factor from the first of ``donors`` that has one."""
    fams: dict[str, FamilyModel] = {}
    failures: dict[str, str] = {}
    key_rows, host_rows = fit_rows(device, None), fit_rows(device, host) if host is not None else {}
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
    anchor_missing(model, key_rows, base)
    for fam in FAMILY_FEATURES:
        if base is None or fam in model.families or model.borrow.get(fam) in model.families:
            continue
        for donor in donors:
            try:
                model.families[fam] = borrow_anchor(fam, donor, base)
            except NseError as exc:
                model.failures[fam] = str(exc)
                continue
            model.failures.pop(fam, None)
            break
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
    if (a := model.anchored) and a.get("from"):
        notes.append(f"no {key_family(spec)} entry on this device: the {a['on']} model x{a['factor']:.3g}, the "
                     f"factor {a['from']} shows")
    elif a and shape_of(key) not in {shape_of(k) for k in a["anchors"]}:
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
                   shape_correction: bool = True, allow_partial: bool = False,
                   donors: tuple[LatencyTable, ...] = ()) -> tuple[LatencyTable, TransferModel]:
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
    model = fit_transfer(device, host, shape_correction=shape_correction, donors=donors)
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
    rows = fit_rows(device_table, None)
    if base is not None and base.anchored is None:  # a table written before anchoring: anchor from its entries
        anchor_missing(model, rows, base)
    for fam, (ks, ys) in rows.items():  # a table written before sibling correction: residuals from its entries
        fm = model.families.get(fam)
        if fm and fm.shape_factors and not fm.siblings and not fm.anchored and "host_ms" not in fm.features:
            fm.siblings = residuals(ks, ys, [fm.predict(features_of(k, None, fm.features)) for k in ks])
    return _fill(device_table, missing, model, None)
