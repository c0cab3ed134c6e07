"""Whole-network calibration of a latency table: an affine map from the LUT sum to measured latency.

    total_ms = slope * lut_sum_ms + intercept_ms

fitted by least squares on *relative* error (each network weighted by 1/measured, so a 20 ms and a 200 ms
network count alike, as they do in MAPE), with a leave-one-out estimate of how well it predicts networks it
was not fitted on. Pure numpy: no devices, no tables.

The nested forms identity (slope 1, intercept 0), scale (intercept 0) and affine can each be fitted, and
``select_fit`` picks one by leave-one-out error. With few networks neither fitting nor choosing is reliable:
on 4 networks (``profile --quick``'s) an affine map and the leave-one-out choice both predicted unseen networks
worse than no correction (benchmarks/latency/quick_calibration_rules.py), so ``--quick`` fits none.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_FIT_POINTS = 3  # two parameters, and one more for a leave-one-out estimate
FORMS = ("identity", "scale", "affine")  # nested, simplest first


@dataclass(frozen=True)
class AffineFit:
    slope: float
    intercept_ms: float
    n: int
    fit_mape: float  # % on the networks it was fitted on
    loo_mape: float  # % on each network by the fit to all the others
    loo_max_abs_pct_err: float
    form: str = "affine"

    def apply(self, lut_sum_ms: np.ndarray | float) -> np.ndarray:
        return self.slope * np.asarray(lut_sum_ms, dtype=np.float64) + self.intercept_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(lut_sums: Any, measured: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(lut_sums, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"need two equal-length 1-D arrays, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all() and (y > 0).all()):
        raise ValueError("LUT sums and measured latencies must be finite and measured ones positive")
    return x, y


def _solve(x: np.ndarray, y: np.ndarray, form: str = "affine") -> tuple[float, float]:
    if form == "identity":
        return 1.0, 0.0
    if form == "scale":  # min sum (s x/y - 1)^2
        r = x / y
        return float(r.sum() / (r @ r)), 0.0
    if form != "affine":
        raise ValueError(f"unknown calibration form {form!r}; known: {', '.join(FORMS)}")
    design = np.stack([x, np.ones_like(x)], axis=1) / y[:, None]  # rows scaled by 1/y: relative residuals
    (slope, intercept), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    return float(slope), float(intercept)


def pct_errors(predicted: Any, measured: Any) -> np.ndarray:
    """Signed % error of each prediction (negative: under-predicted)."""
    p, m = _check(predicted, measured)
    return 100.0 * (p - m) / m


def loo_predictions(lut_sums: Any, measured: Any, *, form: str = "affine") -> np.ndarray:
    """Each network's prediction by the fit (of ``form``) to all the other networks."""
    x, y = _check(lut_sums, measured)
    if x.size < MIN_FIT_POINTS:
        raise ValueError(f"leave-one-out needs >= {MIN_FIT_POINTS} networks, got {x.size}")
    keep = ~np.eye(x.size, dtype=bool)
    out = np.empty_like(y)
    for i in range(x.size):
        slope, intercept = _solve(x[keep[i]], y[keep[i]], form)
        out[i] = slope * x[i] + intercept
    return out


def fit_affine(lut_sums: Any, measured: Any, *, form: str = "affine") -> AffineFit:
    """Fit ``measured ~ slope * lut_sum + intercept`` (relative least squares) with its leave-one-out error.
    ``form``: ``affine`` (both), ``scale`` (intercept 0) or ``identity`` (nothing fitted: the raw LUT sum)."""
    x, y = _check(lut_sums, measured)
    if x.size < MIN_FIT_POINTS:
        raise ValueError(f"calibration needs >= {MIN_FIT_POINTS} measured networks, got {x.size}")
    if np.ptp(x) <= 1e-9 * max(float(np.abs(x).max()), 1.0):
        raise ValueError("calibration needs networks of different LUT sums (all are equal)")
    slope, intercept = _solve(x, y, form)
    loo = np.abs(pct_errors(loo_predictions(x, y, form=form), y))
    fit = np.abs(pct_errors(slope * x + intercept, y))
    return AffineFit(slope, intercept, int(x.size), float(fit.mean()), float(loo.mean()), float(loo.max()), form)


def select_fit(lut_sums: Any, measured: Any, *, forms: tuple[str, ...] = FORMS) -> tuple[AffineFit, dict[str, float]]:
    """The simplest of ``forms`` (simplest first) with the lowest leave-one-out MAPE (a richer form must be
    strictly better), and every form's leave-one-out MAPE."""
    fits = [fit_affine(lut_sums, measured, form=f) for f in forms]
    best = fits[0]
    for f in fits[1:]:
        if f.loo_mape < best.loo_mape - 1e-9:  # strictly better, beyond rounding
            best = f
    return best, {f.form: f.loo_mape for f in fits}


def error_summary(predicted: Any, measured: Any) -> dict[str, float | int]:
    """How well ``predicted`` matches ``measured``: share within +-10%, MAPE, worst case, bias (errors in %)."""
    p, m = _check(predicted, measured)
    if p.size == 0:
        raise ValueError("no networks to summarise")
    err = pct_errors(p, m)
    return {
        "n": int(err.size),
        "within_10pct": float(np.mean(np.abs(err) <= 10.0)),
        "mape": float(np.mean(np.abs(err))),
        "max_abs_pct_err": float(np.max(np.abs(err))),
        "bias_pct": float(np.mean(err)),  # mean signed error: < 0 means the table under-predicts
        "bias_ms": float(np.mean(p - m)),
    }
