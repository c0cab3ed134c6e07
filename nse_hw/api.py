"""nse-hw's Python API: the few calls a user's own code needs, each what the matching CLI command runs.

Everything here is re-exported at the top level (``nse_hw.predict_latency``, ...) and imported lazily, so
``import nse_hw`` stays cheap. Bad input is an :class:`~nse_hw.errors.NseError` with a one-line message (the
CLI prints it and exits with code 2); a latency-table miss names the missing key, never a default.

An *arch* is any of: an :class:`~nse_hw.space.Arch`, an arch JSON file (``nse-hw/arch/1``), a search or training
run directory (its ``arch.json``), the name of a shipped arch (``configs/archs/NAME.json``, e.g.
``mobilenetv2-1.0-224``), or a network made by :func:`build_model`.

Examples:
    >>> import nse_hw
    >>> report = nse_hw.predict_latency("mobilenetv2-1.0-224", device="pixel1")
    >>> report.provenance["device"], report.calibrated
    ('pixel1', False)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from nse_hw.errors import NseError
from nse_hw.paths import ARCHS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nse_hw.latency.recognise import ImportedModel
    from nse_hw.latency.report import LatencyReport
    from nse_hw.latency.table import LatencyTable
    from nse_hw.space import Arch, SearchSpace

    ArchLike = Union[Arch, str, Path, nn.Module]  # noqa: UP007  (a string annotation: no runtime import)

__all__ = ["ExportResult", "SearchResult", "build_model", "expected_latency", "export_model", "load_arch",
           "load_table", "predict_latency", "search", "train_model"]

# What an arch argument can be, for the one-line error when it is none of these.
ACCEPTED = ("an Arch, an arch JSON file, a search/train run directory, a shipped arch name or a network from "
            "build_model (predict_latency also takes .onnx/.tflite files and torchvision/timm model names)")
_MODEL_FILES = (".onnx", ".tflite", ".pte", ".pt", ".pth")


def _as_nse(exc: ValueError) -> NseError:
    return NseError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def load_arch(arch: ArchLike) -> Arch:
    """The architecture ``arch`` describes (see the module's list of what an arch can be).

    Args:
        arch: An Arch, a path (arch JSON file or run directory), a shipped arch name, or a built network.

    Returns:
        The :class:`~nse_hw.space.Arch` (the network's layers, widths, input and classes).

    Raises:
        NseError: The file is missing or malformed, or ``arch`` is something this cannot read (model files such
            as ``.onnx`` and ``.tflite`` included), in one line naming what is accepted.

    Examples:
        >>> arch = load_arch("mobilenetv2-1.0-224")
        >>> arch.input, arch.classes, len(arch.layers)
        ((224, 224, 3), 1000, 17)
    """
    from nse_hw.space import Arch
    from nse_hw.space import load_arch as read_arch

    if isinstance(arch, Arch):
        return arch
    if isinstance(getattr(arch, "arch", None), Arch):  # nse_hw.blocks.Net, from build_model
        return arch.arch  # type: ignore[union-attr]
    if not isinstance(arch, str | Path):
        raise NseError(f"cannot read an architecture from a {type(arch).__name__}; give {ACCEPTED}")
    path = Path(arch)
    if path.suffix.lower() in _MODEL_FILES:
        raise NseError(f"{path}: reading {path.suffix} model files is not supported here; give {ACCEPTED}")
    if path.is_dir():
        if not (path / "arch.json").is_file():
            raise NseError(f"{path} is a directory without arch.json; give {ACCEPTED}")
        path = path / "arch.json"
    try:
        return read_arch(path)  # a file, or a shipped arch by name
    except ValueError as exc:
        if not path.exists():
            raise NseError(f"{str(exc).splitlines()[0]}; give {ACCEPTED}") from None
        raise _as_nse(exc) from None


def load_table(name_or_path: str | Path | LatencyTable, *, precision: str | None = None) -> LatencyTable:
    """A latency table: a device's table, a table by name, or a table file.

    Names are looked up in your table folder first (where ``nse-hw profile`` and ``tables import`` write:
    ``$NSE_HW_TABLES``, the checkout's ``latency_tables/``, or the user data folder from a wheel), then in the
    shipped tables; ``nse-hw tables list`` shows both.

    Args:
        name_or_path: A device name (``pixel1``, ``note10``, ``host``: its table, the TFLite-family one when it
            has several), a table name (``host-litert``, ``pixel1-tflite``), or a path to a table JSON file. A
            :class:`~nse_hw.latency.LatencyTable` is returned as it is.
        precision: Refuse a table measured in another precision (``float32`` or ``int8``); for a device name,
            pick its table of that precision. None: any (a device's float32 table).

    Returns:
        The checked table: ``meta`` (device, runtime, threads, provenance, calibration) and ``entries``.

    Raises:
        NseError: No such table or device, or the file is corrupt (one line naming the file and the key).

    Examples:
        >>> table = load_table("pixel1")
        >>> table.meta["device"], table.meta["runtime"], table.path.name
        ('pixel1', 'tflite', 'pixel1-tflite.json')
        >>> load_table("host-litert").meta["runtime"]
        'litert'
    """
    from nse_hw.latency.table import LatencyTable, known_tables, resolve_table_path, table_for_device
    from nse_hw.latency.table import load_table as read_table

    if isinstance(name_or_path, LatencyTable):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists() or resolve_table_path(path).is_file():
        return read_table(path, precision=precision)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name_or_path)):
        raise NseError(f"no latency table at {path}")
    try:
        found = table_for_device(str(name_or_path), precision=precision or "float32")
    except NseError as exc:
        raise NseError(f"{str(exc).splitlines()[0]}; tables by name: {', '.join(known_tables())}") from None
    return read_table(found, precision=precision)


def predict_latency(model_or_path: ArchLike, *, device: str | None = None, table: str | Path | LatencyTable | None
                    = None, input_size: int | None = None, fill: bool = True) -> LatencyReport:
    """Predict a network's latency on a device from its latency table: the total and the breakdown.

    Args:
        model_or_path: The network (see the module's list of what an arch can be).
        device: A device with a shipped table (default: ``pixel1``, the project's default device). Give
            ``device`` or ``table``, not both.
        table: A table name, path or :class:`~nse_hw.latency.LatencyTable` instead of a device.
        input_size: Predict the network at this input resolution (``N`` x ``N``) instead of its own.
        fill: Keys the table lacks are predicted by the table's transfer model when it has one (rows with
            ``source == "predicted"``, listed in ``filled_keys``; the table file is not changed). False: any
            missing key is an error.

    Returns:
        A frozen :class:`~nse_hw.latency.report.LatencyReport`: ``total_ms`` (calibrated when the table carries a
        calibration, then ``calibrated`` is True), ``lut_sum_ms`` (the raw sum of entries), ``rows`` (component,
        key, count, ms, source per table key), ``components`` (ms per stem/layer/head/classifier), ``table`` and
        ``provenance`` (device, runtime, threads, when and with what the table was made); ``to_dict()`` for JSON.

    Raises:
        NseError: Unreadable input, no such device or table, or a key the table lacks and cannot predict (the
            message names the key and how to measure it).

    Examples:
        >>> report = predict_latency("proxylessnas-mobile-224", device="pixel1")
        >>> round(report.total_ms, 2)
        82.58
        >>> report.components[0][0], report.rows[0].key, report.rows[0].source
        ('stem', 'conv_k3|in=224x224x3|out=32|s=2', 'imported')
        >>> abs(sum(ms for _, ms in report.components) - report.lut_sum_ms) < 1e-9
        True
        >>> small = predict_latency("proxylessnas-mobile-224", device="pixel1", input_size=160)
        >>> small.total_ms < report.total_ms and len(small.filled_keys) > 0
        True
        >>> predict_latency("mobilenetv2-1.0-224", table="pixel1-tflite", fill=False)
        Traceback (most recent call last):
        ...
        nse_hw.errors.LatencyMiss: latency table .../pixel1-tflite.json has no entry for ...
    """
    from nse_hw.latency.report import latency_report

    if device is not None and table is not None:
        raise NseError("give either device or table, not both")
    imported = _imported(model_or_path, input_size)
    arch = imported.arch if imported is not None else load_arch(model_or_path)
    if input_size is not None and imported is None:
        from nse_hw.space.scale import scale_arch

        try:
            arch = scale_arch(arch, resolution=input_size)
        except ValueError as exc:
            raise _as_nse(exc) from None
    if table is None:
        from nse_hw.evolve.budget import DEFAULT_DEVICE

        table = device or DEFAULT_DEVICE
    tbl = load_table(table)
    if tbl is table:  # the caller's own table: keys filled for this report are not added to it
        from dataclasses import replace

        tbl = replace(tbl, entries=dict(tbl.entries))
    return latency_report(arch, tbl, fill=fill, imported=imported)


def _imported(model: object, input_size: int | None) -> ImportedModel | None:
    """``model`` read by the model importer when it is a ``.onnx`` / ``.tflite`` file or a torchvision / timm
    name (not an arch file, run directory or shipped arch name); else None."""
    if not isinstance(model, str | Path):
        return None
    path = Path(model)
    if path.suffix.lower() not in (".onnx", ".tflite") and (path.exists() or path.suffix.lower() == ".json" or
                                                            (ARCHS / f"{path}.json").is_file()):
        return None
    from nse_hw.export.models import import_model

    return import_model(model, input_size=input_size)


def expected_latency(probs: torch.Tensor | Sequence[torch.Tensor], *, space: str | Path | SearchSpace,
                     table: str | Path | LatencyTable, ops: Sequence[Sequence[str]] | None = None) -> torch.Tensor:
    """Differentiable expected latency (ms) of a supernet whose layers keep each candidate op with probability p.

    For the latency term of your own supernet's loss: each searchable layer of ``space`` keeps each of its
    candidate ops independently with probability ``p`` (a multi-branch layer joins what it keeps; a layer that
    may be skipped keeps none with probability prod(1 - p)). A layer that may not be empty is conditioned on
    keeping at least one op. The result is the table's calibrated figure when it has a calibration (affine in
    the sum, so calibrating the expectation is exact).

    Args:
        probs: One probability per candidate op of each searchable layer: a ``[layers, ops]`` tensor, or one 1-D
            tensor per layer (layers may differ in their number of candidates). Values in [0, 1]; in layers
            that may not be skipped at least one must be > 0.
        space: The skeleton (stem, layer widths and strides, head): a space name, YAML path or
            :class:`~nse_hw.space.SearchSpace`.
        table: The device's table (name, path or table); it must hold every key of the space's pool.
        ops: The candidate ops (grammar tokens like ``mb_k5_e6``) of each searchable layer, matching ``probs``
            (default: the space's whole pool in every layer).

    Returns:
        A 0-d tensor (the probabilities' dtype and device); backpropagate through it to the probabilities.

    Raises:
        NseError: Shapes that do not match the layers and their candidates, an op not in the space's pool, or a
            table missing a key of the space.

    Examples:
        >>> import torch
        >>> from nse_hw.space import load_space
        >>> space = load_space("nse27-proxyless224")
        >>> n = len(space.searchable)
        >>> alpha = torch.zeros(n, 2, requires_grad=True)  # two candidates per layer, p = sigmoid(0) = 0.5
        >>> ms = expected_latency(torch.sigmoid(alpha), space=space, table="pixel1",
        ...                       ops=[("mb_k3_e3", "mb_k7_e6")] * n)
        >>> ms.backward()
        >>> alpha.grad.shape, bool(alpha.grad[:, 1].sum() > 0)  # the k7 op costs more: its gradient is positive
        (torch.Size([21, 2]), True)
        >>> one_hot = torch.tensor([[1.0, 0.0]] * n)  # certainty: the expectation is the plain prediction
        >>> from nse_hw.space import parse_op
        >>> arch = space.arch([(parse_op("mb_k3_e3"),)] * n)
        >>> abs(float(expected_latency(one_hot, space=space, table="pixel1", ops=[("mb_k3_e3", "mb_k7_e6")] * n))
        ...     - predict_latency(arch, device="pixel1").total_ms) < 1e-3
        True
    """
    import torch

    from nse_hw.latency import LayerCosts
    from nse_hw.latency import expected_latency as expectation
    from nse_hw.space import SearchSpace, load_space, parse_op

    if not isinstance(space, SearchSpace):
        try:
            space = load_space(space)
        except ValueError as exc:
            raise _as_nse(exc) from None
    model = _space_latency(space, load_table(table))
    layers = list(probs.unbind(0)) if isinstance(probs, torch.Tensor) and probs.dim() == 2 else list(probs)
    if len(layers) != len(model.layers):
        raise NseError(f"space {space.name} has {len(model.layers)} searchable layers; got probabilities for "
                       f"{len(layers)}")
    try:
        cands = [tuple(space.pool)] * len(layers) if ops is None else [tuple(parse_op(str(o)) for o in layer)
                                                                        for layer in ops]
    except ValueError as exc:
        raise _as_nse(exc) from None
    if len(cands) != len(layers):
        raise NseError(f"ops lists {len(cands)} layers; the space has {len(layers)} searchable layers")
    costs = []
    for i, (p, lt, cand) in enumerate(zip(layers, model.layers, cands, strict=True)):
        if p.dim() != 1 or p.shape[0] != len(cand):
            raise NseError(f"layer {i}: probabilities of shape {tuple(p.shape)} for {len(cand)} candidate op(s)")
        if bad := [o for o in cand if o not in lt.ops]:
            raise NseError(f"layer {i}: op {bad[0]} is not in space {space.name}'s pool")
        dtype = p.dtype if p.is_floating_point() else torch.float32  # costs follow p (a GPU supernet's included)
        costs.append(LayerCosts(torch.tensor([lt.ops[o] for o in cand], dtype=dtype, device=p.device), lt.add,
                                lt.scale, lt.identity))
    return model.calibrated(expectation(layers, costs, fixed_ms=model.fixed_ms))


_CACHE: list[Any] = []  # the last (space, table, number of entries, SpaceLatency): a training loop asks each step


def _space_latency(space: SearchSpace, table: LatencyTable) -> Any:
    from nse_hw.supernet import SpaceLatency

    if _CACHE and _CACHE[0] == space and _CACHE[1] is table and _CACHE[2] == len(table.entries):
        return _CACHE[3]
    model = SpaceLatency(space, table)
    _CACHE[:] = [space, table, len(table.entries), model]
    return model


def build_model(arch: ArchLike, *, num_classes: int | None = None, input_size: int | None = None,
                seed: int | None = None) -> nn.Module:
    """The network of ``arch`` as a plain PyTorch module (NCHW input), ready to train or export.

    Args:
        arch: The network (see the module's list of what an arch can be).
        num_classes: Classifier outputs (default: the arch's ``classes``).
        input_size: Input resolution ``N`` x ``N`` the network is described at (default: the arch's). The
            modules do not depend on it (global pooling), but the arch the module carries does.
        seed: Draw the initial weights from this seed (None: torch's global generator).

    Returns:
        An ``nn.Module`` (:class:`nse_hw.blocks.Net`: stem, layers, head, classifier); ``.arch`` is its Arch,
        so it can be passed back to :func:`predict_latency`.

    Raises:
        NseError: Unreadable arch, or a size that does not fit it.

    Examples:
        >>> import torch
        >>> net = build_model("mobilenetv2-1.0-224", num_classes=10, seed=0)
        >>> net(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
        >>> predict_latency(net, device="pixel1").rows[-1].key
        'classifier|in=7x7x1280|out=10'
    """
    from nse_hw.blocks import build_network

    a = load_arch(arch)
    if num_classes is not None or input_size is not None:
        from nse_hw.space.scale import scale_arch

        if num_classes is not None and num_classes < 1:
            raise NseError(f"num_classes must be >= 1, got {num_classes}")
        try:
            a = scale_arch(a, resolution=input_size, classes=num_classes)
        except ValueError as exc:
            raise _as_nse(exc) from None
    return build_network(a, seed=seed)


# The long jobs live beside this module (it stays one page); they import load_arch from here, defined above.
from nse_hw.api_jobs import ExportResult, SearchResult, export_model, search, train_model  # noqa: E402
