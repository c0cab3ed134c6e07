"""``.tflite`` -> :class:`~nse_hw.latency.graph.Graph`, read with the flatbuffer schema LiteRT ships
(``ai_edge_litert.schema_py_generated``, a dependency of nse-hw; no hand-written parsing).

Filters give channels and kernels (CONV_2D ``[O, kh, kw, I]``, DEPTHWISE_CONV_2D ``[1, kh, kw, O]``); a fused
activation becomes an activation node after its op; DEQUANTIZE of a constant (fp16 weights) is a constant.
The image input is NHWC.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from nse_hw.errors import NseError
from nse_hw.latency.graph import GNode, Graph, input_hw

_PASS = {"PAD": "pad", "PADV2": "pad", "RESHAPE": "reshape", "SQUEEZE": "reshape", "EXPAND_DIMS": "reshape",
         "DEQUANTIZE": "dequantize", "QUANTIZE": "quantize", "CAST": "cast"}
_ACTS = {"RELU": "relu", "RELU6": "relu6", "HARD_SWISH": "hswish", "LOGISTIC": "sigmoid"}
_FUSED = {1: "relu", 3: "relu6"}  # ActivationFunctionType; 2 (RELU_N1_TO_1), 4 (TANH), 5 are refused


def _schema() -> ModuleType:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise NseError("reading .tflite needs ai-edge-litert (pip install ai-edge-litert)") from None
    return schema


def read_tflite(path: str | Path, *, input_size: int | None = None) -> Graph:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise NseError(f"cannot read {path}: {exc.strerror or exc}") from None
    s = _schema()
    if len(buf) < 8 or not s.Model.ModelBufferHasIdentifier(buf, 0):
        raise NseError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        return _read(s, buf, path, input_size)
    except NseError:
        raise
    except Exception as exc:  # a truncated or corrupt flatbuffer reads past its end
        raise NseError(f"{path}: corrupt or truncated TFLite model ({type(exc).__name__}: {str(exc)[:120]})") \
            from None


def _read(s: ModuleType, buf: bytes, path: Path, input_size: int | None) -> Graph:
    model = s.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise NseError(f"{path}: corrupt or truncated TFLite model (no subgraph)")
    g = model.Subgraphs(0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    shapes = [g.Tensors(i).ShapeAsNumpy().tolist() if g.Tensors(i).ShapeLength() else []
              for i in range(g.TensorsLength())]
    const = set()
    for i in range(g.TensorsLength()):
        b = model.Buffers(g.Tensors(i).Buffer())
        if b is not None and (b.DataLength() > 0 or b.Offset() > 1):
            const.add(i)
            if b.Offset() > 1 and b.Offset() + b.Size() > len(buf):
                raise NseError(f"{path}: truncated TFLite model (tensor {i}'s weights end at byte "
                               f"{b.Offset() + b.Size()}, the file has {len(buf)})")
            if b.DataLength() > 0:
                b.DataAsNumpy()  # a view of the file's bytes: raises when the weights run past its end
    def values(i: int) -> list[int]:
        b = model.Buffers(g.Tensors(i).Buffer())
        return [int(v) for v in b.DataAsNumpy().view("<i4")] if b is not None and b.DataLength() else []

    nchw: set[int] = set()  # tensors a TRANSPOSE made NCHW (litert-torch keeps torch's x.mean([2, 3]) so)
    nodes: list[GNode] = []
    for j in range(g.OperatorsLength()):
        op = g.Operators(j)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        out = int(op.Outputs(0))
        if kind == "DEQUANTIZE" and ins and ins[0] in const:
            const.add(out)
            continue
        if kind == "TRANSPOSE" and len(ins) > 1 and values(ins[1]) == [0, 3, 1, 2]:
            nchw.add(out)
        spatial = (2, 3) if ins and ins[0] in nchw else (1, 2)
        axes = tuple(sorted(a % 4 for a in values(ins[1]))) if kind == "MEAN" and len(ins) > 1 else ()
        try:
            nodes += _node(s, kind, j, op, ins, out, shapes, const, global_mean=axes == spatial)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:  # named, then refused
            nodes.append(GNode(f"#{j}", "other", f"{kind}, unreadable: {type(exc).__name__}",
                               tuple(f"t{i}" for i in ins if i >= 0 and i not in const), f"t{out}"))
    inputs = [int(g.Inputs(i)) for i in range(g.InputsLength()) if int(g.Inputs(i)) not in const]
    if len(inputs) != 1 or g.OutputsLength() != 1:
        raise NseError(f"{path}: the model has {len(inputs)} inputs and {g.OutputsLength()} outputs; an image "
                       "classifier has one of each")
    t = g.Tensors(inputs[0])
    sig = t.ShapeSignatureAsNumpy().tolist() if t.ShapeSignatureLength() else shapes[inputs[0]]
    dims = [None if d < 0 else d for d in sig]
    shape = input_hw(dims, "NHWC", input_size, str(path))
    return Graph(str(path), "tflite", nodes, f"t{inputs[0]}", shape, f"t{int(g.Outputs(0))}")


def _options(s: ModuleType, op: Any, cls: str) -> Any:
    table = op.BuiltinOptions()
    if table is None:
        return None
    opts = getattr(s, cls)()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _node(s: ModuleType, kind: str, j: int, op: Any, ins: list[int], out: int, shapes: list[list[int]],
          const: set[int], *, global_mean: bool = False) -> list[GNode]:
    name = f"#{j}"
    acts = tuple(f"t{i}" for i in ins if i >= 0 and i not in const)
    attrs: dict[str, Any] = {}
    fused = 0
    role = "other"
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) > 1 and ins[1] in const:
        opts = _options(s, op, "Conv2DOptions" if kind == "CONV_2D" else "DepthwiseConv2DOptions")
        f, cin = shapes[ins[1]], shapes[ins[0]][-1]
        if kind == "CONV_2D":
            cout, kh, kw, ig = f
            groups = cin // ig if ig else 1
        else:
            _, kh, kw, cout = f
            groups = cin
        attrs = {"cin": cin, "cout": cout, "kh": kh, "kw": kw, "sh": opts.StrideH(), "sw": opts.StrideW(),
                 "dh": opts.DilationHFactor(), "dw": opts.DilationWFactor(), "groups": groups}
        role, acts, fused = "conv", acts[:1], opts.FusedActivationFunction()
    elif kind == "FULLY_CONNECTED" and len(ins) > 1 and ins[1] in const:
        o, i_ = shapes[ins[1]][:2]
        opts = _options(s, op, "FullyConnectedOptions")
        role, attrs, acts, fused = "linear", {"cin": i_, "cout": o}, acts[:1], opts.FusedActivationFunction() \
            if opts else 0
    elif kind in ("ADD", "MUL", "SUB", "DIV"):
        opts = _options(s, op, f"{kind.capitalize()}Options")
        fused = opts.FusedActivationFunction() if opts is not None and hasattr(opts, "FusedActivationFunction") \
            else 0
        if len(acts) == 1:
            role, attrs = "pass", {"what": "constant " + kind.lower()}
        elif kind in ("ADD", "MUL"):
            role = kind.lower()
    elif kind == "MEAN":
        role, acts = "mean", acts[:1]
        attrs = {"global": global_mean}
    elif kind == "AVERAGE_POOL_2D":
        opts = _options(s, op, "Pool2DOptions")
        h, w = shapes[ins[0]][1:3]
        role = "mean" if (opts.FilterHeight(), opts.FilterWidth()) == (h, w) else "other"
        attrs = {"global": role == "mean"}
        fused = opts.FusedActivationFunction()
    elif kind in _ACTS:
        role, attrs = "act", {"kind": _ACTS[kind]}
    elif kind == "SOFTMAX":
        role = "softmax"
    elif kind == "TRANSPOSE":
        role, acts = "transpose", acts[:1]
    elif kind in _PASS:
        role, attrs, acts = "pass", {"what": _PASS[kind]}, acts[:1]
    target = f"t{out}"
    if fused not in (0, *_FUSED):
        return [GNode(name, "other", f"{kind} with fused activation {fused}", acts, target)]
    if fused:
        return [GNode(name, role, kind, acts, f"{target}:pre", attrs),
                GNode(f"{name}.act", "act", f"{kind}+{_FUSED[fused].upper()}", (f"{target}:pre",), target,
                      {"kind": _FUSED[fused]})]
    return [GNode(name, role, kind, acts, target, attrs)]
