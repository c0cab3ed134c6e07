"""``model_card.json``: what each exported file is, how to feed it, how accurate and how fast it is.

Two networks are involved and the card keeps them apart: the *trained proxy* (the arch's layer sequence at the
proxy task's input, classes and width; its files are verified against PyTorch on real test images) and the
*deployment-shaped* network (the arch file as written, e.g. 224x224x3 -> 1000, random weights; its file exists
to measure the latency that the table predicts).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from nse_hw import __version__
from nse_hw.latency import LatencyTable, Prediction
from nse_hw.latency.table import table_kernels, table_precision
from nse_hw.space import Arch

CARD_FORMAT = "nse-hw/model-card/1"
CARD_NAME = "model_card.json"


def file_info(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def signed_error_pct(predicted_ms: float, measured_ms: float) -> float:
    """(predicted - measured) / measured in %: positive means the table over-predicts."""
    return 100.0 * (predicted_ms - measured_ms) / measured_ms


def input_spec(proxy: Arch, data: dict[str, Any], *, size: int) -> dict[str, Any]:
    return {"tflite": {"layout": "NHWC", "shape": [1, size, size, proxy.input[2]], "dtype": "float32"},
            "onnx": {"layout": "NCHW", "shape": [1, proxy.input[2], size, size], "dtype": "float32"},
            "resolution": size, "channels": proxy.input[2],
            "normalisation": {"mean": data["mean"], "std": data["std"],
                              "formula": "x = (pixel / 255 - mean) / std, per channel"},
            "data": data["name"], "output": f"logits [1, {proxy.classes}] (no softmax)",
            "int8_note": "model_int8.tflite has int8 input/output tensors: quantise with the input tensor's "
                         "scale/zero-point, dequantise the output (profilers.host does both)"}


# Measured on an Intel Xeon host with AVX-512 and AMX (DESIGN.md, "Host tables are per CPU"): quoted, not
# re-measured by this tool; the card sets it beside this host's own figures.
INTEL_REFERENCE = {
    "cpu": "Intel Xeon (AVX-512, AMX)", "runtime": "ai-edge-litert 2.3, 1 thread",
    "network": "the searched network's 224-px deployment file, random weights",
    "int8_ms": {"xnnpack": 103.7, "builtin": 14.4}, "float32_ms": {"xnnpack": 27.1, "builtin": 24.4},
    "source": "quoted from DESIGN.md (an earlier session's measurement on another machine), not re-measured here",
}


def kernels_comparison(timings: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Both LiteRT kernel paths' timings of one file, which is faster on this CPU and by how much."""
    ms = {k: float(t["ms"]) for k, t in timings.items()}
    fast, slow = sorted(ms, key=ms.__getitem__)
    return {"ms": ms, "timings": timings, "faster": fast, "ratio": ms[slow] / ms[fast],
            "note": f"on this CPU {fast} runs this file {ms[slow] / ms[fast]:.2f}x faster than {slow}; the path is "
                    "CPU-dependent (an Intel AVX-512/AMX host ran int8 7.2x faster with builtin, see "
                    "intel_reference)", "intel_reference": INTEL_REFERENCE}


def cpu_record(meta: dict[str, Any], here: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """Both CPUs, the table's and this host's, whether they are the same, and the warning when not."""
    from nse_hw.hostcpu import cpu_status, cpu_warning, table_cpu

    if not here:
        return {"table_cpu": table_cpu(meta), "host_cpu": None, "cpu_match": "unknown"}
    host = meta.get("host") if isinstance(meta.get("host"), dict) else {}
    return {"table_cpu": table_cpu(meta) or {"model_name": host.get("cpu"), "fingerprint": None},
            "host_cpu": here, "cpu_match": cpu_status(meta, here), "cpu_warning": cpu_warning(meta, here, name)}


def latency_section(arch: Arch, table: LatencyTable, pred: Prediction, measured: dict[str, Any] | None,
                    deploy_file: str | None, *, target: bool = True, here: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    meta = table.meta
    section: dict[str, Any] = {
        "network": f"deployment arch (arch.json: {'x'.join(map(str, arch.input))} -> {arch.classes}), NOT the "
                   "trained proxy",
        "predicted_ms": pred.total_ms, "lut_sum_ms": pred.lut_sum_ms, "calibrated": bool(meta.get("calibration")),
        "table": str(table.path), "table_meta": {k: meta.get(k) for k in ("device", "runtime", "runtime_version",
                                                                         "threads", "dtype", "created")}
                                     | {"precision": table_precision(meta), "kernels": table_kernels(meta),
                                        "quick": bool(meta.get("quick"))},
        **cpu_record(meta, here, str(table.path))}
    search = {k: arch.meta[k] for k in ("device", "budget_ms", "predicted_ms", "table") if k in arch.meta}
    if target and "predicted_ms" in search:  # the search's own target, often a phone this host cannot measure
        section["search_target"] = search
    if measured is not None:
        section.update({"measured_file": deploy_file, "measured": measured,
                        "signed_error_pct": signed_error_pct(pred.total_ms, measured["ms"]),
                        "error_convention": "(predicted - measured) / measured; > 0: table over-predicts"})
    return section


def build_card(*, arch: Arch, proxy: Arch, data: dict[str, Any], size: int, files: dict[str, dict[str, Any]],
               latency: dict[str, Any], accuracy: dict[str, Any], checkpoint: Path, host: dict[str, Any],
               verified: bool) -> dict[str, Any]:
    return {
        "format": CARD_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tool_version": __version__,
        "checkpoint": str(checkpoint),
        "verified": verified,
        "files": files,
        "arch": {"deployment_file": "arch.json", "proxy_file": "proxy_arch.json",
                 "width_mult": proxy.meta.get("width_mult", 1.0), "deployment": arch.to_dict(),
                 "proxy": proxy.to_dict(),
                 "note": "the trained model is the proxy view of the deployment arch: same layer sequence, "
                         "the proxy task's input/classes and the width multiplier"},
        "input": input_spec(proxy, data, size=size),
        "labels": data["labels"],
        "accuracy": accuracy,
        "latency": latency,
        "host": host,
    }
