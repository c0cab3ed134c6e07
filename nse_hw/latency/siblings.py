"""Sibling correction: an op at a shape no entry of the table has inherits the residual of its nearest sibling.

A family's linear model (:mod:`nse_hw.latency.transfer`) misses each op by a factor that depends mostly on the
op and its channels (a kernel the runtime tiles well or badly, a dilation it unrolls) and little on the input
resolution. So a key whose shape the table never measured (a 160-px network on a 224-px table) is priced as
``model(key) * measured / model`` of its *sibling*: the fitted key of the same op, stride, input and output
channels whose input height is nearest (in log). Without such a key there is no correction: a sibling with
other channels made predictions worse on this host (a stage left out: 9.6% -> 10.9% MAPE). Measured on the
OFA Note10 tables, leaving one resolution out, and on this host's 224 -> 160 px tables (RESULTS-phones.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

from nse_hw.latency.keys import parse_key


def residuals(keys: Sequence[str], measured: Sequence[float], fitted: Sequence[float]) -> dict[str, float]:
    """``measured / fitted`` per op key (rounded to 5 significant digits); non-op keys are left out."""
    return {k: float(f"{m / f:.5g}") for k, m, f in zip(keys, measured, fitted, strict=True)
            if parse_key(k).kind == "op" and m > 0 and f > 0}


@lru_cache(maxsize=65536)
def _where(key: str) -> tuple[tuple[str, int, int, int], float]:
    spec = parse_key(key)
    return (key.split("|", 1)[0], spec.stride, spec.shape[2], spec.out), math.log(spec.shape[0])


def nearest(key: str, known: Mapping[str, float]) -> tuple[str, float] | None:
    """The sibling of op ``key`` among ``known`` (key -> residual) and its residual; None if it has none (no
    key of the same op, stride and channels, or ``key`` is not an op key). Ties go to the key that sorts first."""
    if parse_key(key).kind != "op":
        return None
    group, h = _where(key)
    best: tuple[float, str] | None = None
    for k in sorted(k for k in known if k.startswith(group[0] + "|")):
        g, hk = _where(k)
        if g == group and (best is None or abs(hk - h) < best[0]):
            best = (abs(hk - h), k)
    return None if best is None else (best[1], known[best[1]])
