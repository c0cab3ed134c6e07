"""Keys of a unit that differs from a table's only in a fused activation: ReLU (``_re``) vs ReLU6.

TFLite and XNNPACK fuse both into the conv before them as an output clamp (ReLU6 clamps to [0, 6], ReLU to
[0, inf)): the same kernel, the same memory traffic. A ``_re`` key the table lacks is priced as its ReLU6 twin
(measured, or predicted by the table's transfer model like any other miss), and the entry says so. Hard-swish
is not such a variant (an unfused op of its own in TFLite): it has its own keys and features.
"""

from __future__ import annotations

import dataclasses

from nse_hw.latency.keys import head_key, op_key, parse_key
from nse_hw.latency.table import LatencyTable

TWIN_MODEL = "relu6 twin"


def relu6_twin(key: str) -> str | None:
    """The ReLU6 key of a ReLU unit (an op with ``_re``, ``head_re``); None for any other key."""
    spec = parse_key(key)
    if spec.op is not None and spec.op.re:
        return op_key(dataclasses.replace(spec.op, re=False), spec.shape, spec.out, spec.stride)
    if spec.kind == "head" and spec.act == "re":
        return head_key(spec.shape, spec.out)
    return None


def fill_keys(keys: list[str], table: LatencyTable, *, transfer: bool = True) -> list[str]:
    """Fill (in place, ``source: predicted``) the ``keys`` ``table`` lacks: ReLU units from their ReLU6 twins,
    the rest (and missing twins) with the table's transfer model when ``transfer`` and it has one. Returns the
    keys that were filled (a key no model can price stays missing: the lookup names it)."""
    from nse_hw.latency.transfer import fill_missing

    missing = [k for k in dict.fromkeys(keys) if k not in table]
    twins = {k: t for k in missing if (t := relu6_twin(k)) is not None}
    direct = [k for k in missing if k not in twins]
    filled: list[str] = []
    if transfer and table.meta.get("transfer"):
        filled = fill_missing(direct + [t for t in twins.values() if t not in table], table)
    for k, t in twins.items():
        if t in table:
            src = table.entries[t]
            extra = {f: src[f] for f in ("model", "extrapolated") if f in src}
            table.set(k, ms=float(src["ms"]), source="predicted", twin=t, twin_source=src.get("source"),
                      **{"model": f"{TWIN_MODEL} ({extra['model']})" if "model" in extra else TWIN_MODEL},
                      **({"extrapolated": extra["extrapolated"]} if "extrapolated" in extra else {}))
            filled.append(k)
    return [k for k in missing if k in filled]
