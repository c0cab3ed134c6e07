"""``.onnx`` -> :class:`~nse_hw.latency.graph.Graph`, read with the ``onnx`` package (protobuf, checker).

Constants are initializers or ``Constant`` nodes; weights give channels and kernels (``[O, I/g, kh, kw]``),
attributes give strides, dilations and groups. The image input is NCHW.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nse_hw.errors import NseError
from nse_hw.latency.graph import GNode, Graph, input_hw

_PASS = {"BatchNormalization": "bn", "Flatten": "reshape", "Reshape": "reshape", "Squeeze": "reshape",
         "Unsqueeze": "reshape", "Identity": "identity", "Dropout": "dropout", "Pad": "pad", "Cast": "cast"}
_ACTS = {"Relu": "relu", "HardSwish": "hswish", "HardSigmoid": "hsigmoid", "Sigmoid": "sigmoid"}


def read_onnx(path: str | Path, *, input_size: int | None = None) -> Graph:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # DecodeError, ValidationError, OSError: all mean "not a usable .onnx"
        first = next((s for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
        raise NseError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {first[:160]})") from None
    g = model.graph
    consts: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute:
            v = onnx.helper.get_attribute_value(n.attribute[0])
            consts[n.output[0]] = numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else np.asarray(v)
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise NseError(f"{path}: the model has {len(inputs)} inputs and {len(g.output)} outputs; an image "
                       "classifier has one of each")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in inputs[0].type.tensor_type.shape.dim]
    shape = input_hw(dims, "NCHW", input_size, str(path))
    nodes = [_safe_node(n, i, consts) for i, n in enumerate(g.node) if n.op_type != "Constant"]
    return Graph(str(path), "onnx", nodes, inputs[0].name, shape, g.output[0].name)


def _attrs(n: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def _safe_node(n: Any, i: int, consts: dict[str, Any]) -> GNode:
    """The node, or an ``other`` node saying why it could not be read (the recogniser then refuses it by name)."""
    try:
        return _node(n, i, consts)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        return GNode(n.name or f"{n.op_type}#{i}", "other", f"{n.op_type}, unreadable: {type(exc).__name__}",
                     tuple(t for t in n.input if t and t not in consts), n.output[0] if n.output else f"#{i}")


def _node(n: Any, i: int, consts: dict[str, Any]) -> GNode:
    name = n.name or f"{n.op_type}#{i}"
    acts = tuple(t for t in n.input if t and t not in consts)
    out = n.output[0]
    a = _attrs(n)
    op = n.op_type
    if op == "Conv" and n.input[1] in consts and consts[n.input[1]].ndim != 4:
        return GNode(name, "other", f"Conv ({consts[n.input[1]].ndim - 2}-D)", acts[:1], out)
    if op == "Conv" and n.input[1] in consts:
        o, ig, kh, kw = consts[n.input[1]].shape
        groups = int(a.get("group", 1))
        sh, sw = a.get("strides", [1, 1])
        dh, dw = a.get("dilations", [1, 1])
        return GNode(name, "conv", op, acts[:1], out, {"cin": ig * groups, "cout": o, "kh": kh, "kw": kw, "sh": sh,
                                                       "sw": sw, "dh": dh, "dw": dw, "groups": groups})
    if op in _ACTS:
        return GNode(name, "act", op, acts, out, {"kind": _ACTS[op]})
    if op == "Clip":
        lo, hi = (_scalar(consts, n.input[j]) if len(n.input) > j and n.input[j] else None for j in (1, 2))
        lo, hi = a.get("min", lo), a.get("max", hi)
        if lo == 0 and hi == 6:
            return GNode(name, "act", op, acts, out, {"kind": "relu6"})
        return GNode(name, "other", f"Clip({lo}, {hi})", acts, out)
    if op in ("Add", "Mul", "Sub", "Div") and len(acts) == 1:  # a constant operand: a bias or scale, folded
        return GNode(name, "pass", op, acts, out, {"what": "constant " + op.lower()})
    if op == "Add":
        return GNode(name, "add", op, acts, out)
    if op == "Mul":
        return GNode(name, "mul", op, acts, out)
    if op == "GlobalAveragePool":
        return GNode(name, "mean", op, acts, out, {"global": True})
    if op == "ReduceMean":
        axes = a.get("axes")
        if axes is None and len(n.input) > 1 and n.input[1] in consts:
            axes = consts[n.input[1]].tolist()
        return GNode(name, "mean", op, acts, out, {"global": sorted(int(x) % 4 for x in (axes or [])) == [2, 3]})
    if op == "Gemm" and len(n.input) > 1 and n.input[1] in consts:
        w = consts[n.input[1]].shape
        o, i_ = (w[0], w[1]) if a.get("transB", 0) else (w[1], w[0])
        return GNode(name, "linear", op, acts, out, {"cin": i_, "cout": o})
    if op == "MatMul" and len(n.input) > 1 and n.input[1] in consts and consts[n.input[1]].ndim == 2:
        i_, o = consts[n.input[1]].shape
        return GNode(name, "linear", op, acts, out, {"cin": i_, "cout": o})
    if op == "Softmax":
        return GNode(name, "softmax", op, acts, out)
    if op in _PASS:
        return GNode(name, "pass", op, acts, out, {"what": _PASS[op]})
    return GNode(name, "other", op, acts, out)


def _scalar(consts: dict[str, Any], name: str) -> float | None:
    v = consts.get(name)
    return None if v is None else float(v.reshape(-1)[0])
