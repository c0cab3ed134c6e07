"""Import any model file or model name as an arch the latency tables can price.

    import_model("net.onnx")                                   # ONNX graph (onnx package)
    import_model("net.tflite")                                 # TFLite flatbuffer (LiteRT's schema)
    import_model("mobilenet_v2", input_size=224)               # torchvision name (also torchvision/NAME)
    import_model("mobilenet_v2@width_mult=0.5", input_size=160)  # with builder keywords (numbers or names)
    import_model("timm/mobilenetv3_large_100", input_size=224) # timm (optional: pip install 'nse-hw[timm]')

Files are read without torch (``nse_hw.latency``'s readers). A name is built with random weights (latency does
not depend on them), exported with the repo's ONNX exporter (:func:`nse_hw.export.onnx.export_onnx`) into a
temporary folder and read back: one importer for every source.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nse_hw.errors import NseError
from nse_hw.latency.graph import Graph
from nse_hw.latency.recognise import ImportedModel, recognise

FILE_KINDS = (".onnx", ".tflite")
TIMM_EXTRA = "timm"  # the pyproject extra that installs timm


def read_graph(path: str | Path, *, input_size: int | None = None) -> Graph:
    """The neutral graph of a ``.onnx`` / ``.tflite`` file."""
    path = Path(path)
    if not path.is_file():
        raise NseError(f"no such model file: {path}")
    if path.suffix.lower() == ".onnx":
        from nse_hw.latency.onnx_reader import read_onnx

        return read_onnx(path, input_size=input_size)
    from nse_hw.latency.tflite_reader import read_tflite

    return read_tflite(path, input_size=input_size)


def import_model(source: str | Path, *, input_size: int | None = None) -> ImportedModel:
    """``source`` (a ``.onnx`` or ``.tflite`` path, or a torchvision / ``timm/`` model name) as an
    :class:`~nse_hw.latency.recognise.ImportedModel`: its arch, the file's nodes per unit and what was
    approximated. Bad input is an :class:`NseError` in one line (an unknown name, a corrupt file, a dynamic input
    with no ``input_size``, an op no table prices, naming the node)."""
    text = str(source)
    if Path(text).suffix.lower() in FILE_KINDS:
        return recognise(read_graph(text, input_size=input_size))
    if Path(text).suffix or "/" in text.removeprefix("torchvision/").removeprefix("timm/"):
        what = "not a model file" if Path(text).is_file() else "no such file"
        raise NseError(f"{text}: {what} ({', '.join(FILE_KINDS)}, an arch .json) and not a model name "
                       "(torchvision NAME, torchvision/NAME, timm/NAME)")
    if input_size is None:
        raise NseError(f"model name {text!r} needs its input size: give --input-size N (e.g. 224)")
    if input_size < 1:
        raise NseError(f"--input-size must be >= 1, got {input_size}")
    model = _build(text)
    with tempfile.TemporaryDirectory(prefix="nse-hw-import-") as tmp:
        from nse_hw.export.onnx import export_onnx

        path = export_onnx(model, (1, 3, input_size, input_size), Path(tmp) / "model.onnx")
        imported = recognise(read_graph(path))
    imported.source, imported.fmt = text, "timm" if text.startswith("timm/") else "torchvision"
    imported.arch.meta.update(imported_from=text, file_format=imported.fmt)
    return imported


def parse_name(text: str) -> tuple[str, str, dict[str, Any]]:
    """``[torchvision/|timm/]NAME[@key=value,...]`` -> (library, name, keywords); values are ints, floats,
    true/false or strings."""
    lib, _, rest = text.rpartition("/") if text.startswith(("torchvision/", "timm/")) else ("torchvision", "", text)
    name, _, args = rest.partition("@")
    kwargs: dict[str, Any] = {}
    for item in filter(None, args.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise NseError(f"model name {text!r}: builder keywords are key=value, got {item!r}")
        kwargs[key] = _value(value)
    if not name.isidentifier():
        raise NseError(f"model name {text!r}: {name!r} is not a model name")
    return lib, name, kwargs


def _value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def _build(text: str) -> Any:
    lib, name, kwargs = parse_name(text)
    from nse_hw.compat import import_torchvision

    tv = import_torchvision()  # timm imports torchvision: the shim must come first
    if lib == "timm":
        try:
            import timm
        except ImportError:
            raise NseError(f"timm models need timm: pip install 'nse-hw[{TIMM_EXTRA}]'") from None
        if name not in timm.list_models():
            raise NseError(f"unknown timm model {name!r} (see timm.list_models())")
        try:
            return timm.create_model(name, pretrained=False, **kwargs).eval()
        except Exception as exc:
            raise NseError(f"timm model {name!r} with {kwargs}: {type(exc).__name__}: {exc}") from None
    known = tv.models.list_models(module=tv.models)  # classification models only
    if name not in known:
        close = [m for m in known if name.split("_")[0] in m][:6]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see torchvision.models.list_models())"
        raise NseError(f"unknown torchvision model {name!r}{hint}")
    try:
        return tv.models.get_model(name, weights=None, **kwargs).eval()
    except Exception as exc:  # a bad keyword: TypeError / ValueError from the builder
        raise NseError(f"torchvision model {name!r} with {kwargs}: {type(exc).__name__}: {exc}") from None
