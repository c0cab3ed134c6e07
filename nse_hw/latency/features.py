"""Cost features of a table key, computed from the key alone (no device, no model build).

Used by the calibrated host -> device transfer (:mod:`nse_hw.latency.transfer`). Units keep the numbers near 1:
MACs in millions (M), bytes in megabytes (MB, float32 = 4 bytes a value).

    dense_mmacs   MACs of every non-depthwise conv: 1x1 expand/project, the stem's kxk conv, the head, rec's 1xk
                  and kx1 full convs, the classifier's linear layer and SE's two 1x1 convs
    dw_k3_mmacs   depthwise MACs of k=3 kernels (dilated k=3 included: dilation changes reach, not MACs)
    dw_k5_mmacs   ... of k=5 kernels
    dw_k7p_mmacs  ... of k>=7 kernels (one feature: phones show no cliff above 7, the x86 host does)
    io_mb         bytes moved at the unit's edges: input and output activations plus all weights
    mid_mb        bytes of the expanded (middle) activations written and read inside the unit
    se_mb         extra passes over the middle activations by squeeze-excite (pool + gate multiply)
    hs_mb         extra passes by hard-swish (an unfused activation op in TFLite, unlike ReLU6); also for an
                  h-swish stem (``conv_k3_hs``) and head (``head_hs``)

A key's *family* picks which fitted model predicts it: ``mb``, ``rec``, ``conv`` (stem), ``head``,
``classifier``, or ``join`` (the element-wise ``add``/``scale`` keys).
"""

from __future__ import annotations

from nse_hw.latency.keys import KeySpec, out_shape, parse_key
from nse_hw.space.grammar import Op

KEY_FEATURES = ("dense_mmacs", "dw_k3_mmacs", "dw_k5_mmacs", "dw_k7p_mmacs", "io_mb", "mid_mb", "se_mb", "hs_mb")
FAMILIES = ("mb", "rec", "conv", "head", "classifier", "join")
_MB = 4e-6  # float32 bytes -> MB
_M = 1e-6


def key_family(key: str | KeySpec) -> str:
    spec = parse_key(key) if isinstance(key, str) else key
    if spec.kind == "op":
        assert spec.op is not None
        return spec.op.kind
    return "join" if spec.kind in ("add", "scale") else spec.kind


def _dw_name(k: int) -> str:
    return "dw_k3_mmacs" if k <= 3 else "dw_k5_mmacs" if k <= 5 else "dw_k7p_mmacs"


def _block_dims(spec: KeySpec) -> tuple[Op, int, int, int, int, int, int, int, int]:
    """(op, h, w, c, oh, ow, o, mid, expand) of an expand -> spatial -> project block (``mb`` or ``rec``);
    ``mid`` is the expanded width, ``expand`` 1 when there is a 1x1 expand conv (e != 1), else 0."""
    assert spec.op is not None
    h, w, c = spec.shape
    return (spec.op, h, w, c, *out_shape(spec.shape, spec.out, spec.stride), spec.op.mid(c), int(spec.op.expands))


def _mb_features(spec: KeySpec, f: dict[str, float]) -> None:
    op, h, w, c, oh, ow, o, mid, expand = _block_dims(spec)
    f["dense_mmacs"] = (h * w * c * mid * expand + oh * ow * mid * o) * _M
    f[_dw_name(op.k)] = oh * ow * mid * op.k * op.k * _M
    weights = c * mid * expand + mid * op.k * op.k + mid * o
    mid_values = h * w * mid * expand + oh * ow * mid
    if op.se:
        red = max(8, mid // 4)  # SqueezeExcite(reduction=4) in nse_hw.blocks
        f["dense_mmacs"] += 2 * mid * red * _M
        weights += 2 * mid * red
        f["se_mb"] = 2 * oh * ow * mid * _MB
    if op.hs:
        f["hs_mb"] = mid_values * _MB
    f["io_mb"] = (h * w * c + oh * ow * o + weights) * _MB
    f["mid_mb"] = mid_values * _MB


def _rec_features(spec: KeySpec, f: dict[str, float]) -> None:
    op, h, w, c, oh, ow, o, mid, expand = _block_dims(spec)
    # expand, 1xk (stride on W), kx1 (stride on H), project: all dense convs
    f["dense_mmacs"] = (h * w * c * mid * expand + h * ow * mid * mid * op.k + oh * ow * mid * mid * op.k
                        + oh * ow * mid * o) * _M
    weights = c * mid * expand + 2 * mid * mid * op.k + mid * o
    f["io_mb"] = (h * w * c + oh * ow * o + weights) * _MB
    f["mid_mb"] = (h * w * mid * expand + h * ow * mid + oh * ow * mid) * _MB


def key_features(key: str | KeySpec) -> dict[str, float]:
    """The :data:`KEY_FEATURES` of one key (zeros where a feature does not apply)."""
    spec = parse_key(key) if isinstance(key, str) else key
    f = dict.fromkeys(KEY_FEATURES, 0.0)
    h, w, c = spec.shape
    fam = key_family(spec)
    if fam == "mb":
        _mb_features(spec, f)
    elif fam == "rec":
        _rec_features(spec, f)
    elif fam == "conv":
        assert spec.op is not None
        oh, ow, o = out_shape(spec.shape, spec.out, spec.stride)
        f["dense_mmacs"] = oh * ow * c * o * spec.op.k ** 2 * _M
        f["io_mb"] = (h * w * c + oh * ow * o + c * o * spec.op.k ** 2) * _MB
        f["hs_mb"] = oh * ow * o * _MB if spec.op.hs else 0.0
    elif fam == "head":
        f["dense_mmacs"] = h * w * c * spec.out * _M
        f["io_mb"] = (h * w * c + h * w * spec.out + c * spec.out) * _MB
        f["hs_mb"] = h * w * spec.out * _MB if spec.act == "hs" else 0.0
    elif fam == "classifier":
        f["dense_mmacs"] = c * spec.out * _M
        f["io_mb"] = (h * w * c + spec.out + c * spec.out) * _MB
    else:  # add reads two terms and writes one; scale reads one and writes one
        f["io_mb"] = (3 if spec.kind == "add" else 2) * h * w * c * _MB
    return f
