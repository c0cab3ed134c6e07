"""Export a plain network as it is (no training checkpoint): convert to each format and verify every file against
PyTorch on seeded random inputs (there is no test data to check accuracy on), timing it on this host.

What :func:`nse_hw.export_model` runs for an ``nn.Module``; a checkpoint or run directory goes through
:func:`nse_hw.export.ship.export_checkpoint` instead (real test images, model card, deployment latency).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nse_hw.atomic import atomic_write_json, exclusive_dir
from nse_hw.errors import NseError
from nse_hw.export.card import file_info
from nse_hw.export.ship import EXTRA_FORMATS, FORMATS, HostRuntimes, convert_model, prepare_out
from nse_hw.export.verify import torch_logits, verify

log = logging.getLogger(__name__)

# format -> (file name, runtime that loads it, its input layout)
FILES = {"tflite": ("model.tflite", "litert", "NHWC"), "onnx": ("model.onnx", "onnxruntime", "NCHW"),
         "pte": ("model.pte", "executorch", "NCHW")}
REPORT = "export.json"


def export_network(model: nn.Module, nchw: tuple[int, int, int, int], out: Path, host: HostRuntimes, *,
                   formats: tuple[str, ...] = FORMATS, force: bool = False, verify_images: int = 100,
                   runs: int = 50, warmup: int = 5, threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Write ``model`` (input ``nchw``) in each of ``formats`` into ``out``, each verified and timed, and
    ``export.json`` describing them; returns that report. A file that does not match PyTorch is an error naming
    it (its files and report are written first)."""
    bad = [f for f in formats if f not in FORMATS + EXTRA_FORMATS]
    if bad or not formats:
        raise NseError(f"unknown export format(s) {bad or list(formats)}; choose from "
                       f"{', '.join(FORMATS + EXTRA_FORMATS)}")
    if len(nchw) != 4 or any(not isinstance(v, int) or v < 1 for v in nchw):
        raise NseError(f"input shape {nchw} must be four positive integers (N, C, H, W)")
    if "pte" in formats:
        from nse_hw.export.pte import require_executorch

        require_executorch()
    out = prepare_out(Path(out), force=force)
    x = torch.randn((verify_images, *nchw[1:]), generator=torch.Generator().manual_seed(seed))
    inputs = f"{verify_images} seeded random normal inputs (seed {seed})"
    ref = torch_logits(model, x)
    files: dict[str, Any] = {}
    failed = []
    with exclusive_dir(out):
        for fmt in formats:
            name, runtime, layout = FILES[fmt]
            path = convert_model(fmt, model, nchw, out / name)
            session = host.load(path, runtime, threads=threads)
            cmp = verify(model, session.run, x, None, layout=layout, inputs=inputs, reference=ref)
            timing = host.time(session, warmup=warmup, runs=runs)
            files[name] = {"runtime": runtime, "input_layout": layout, **file_info(path),
                           "verification_vs_pytorch": cmp.to_dict(), "latency_host": {**timing, "threads": threads}}
            log.info("%s: max |diff| %.2e, top-1 agreement %.2f%%, %.3f ms", name, cmp.max_abs_diff,
                     100 * cmp.top1_agreement, timing["ms"])
            if not cmp.passes_float():
                failed.append(name)
        report = {"format": "nse-hw/network-export/1", "input_nchw": list(nchw), "verified": not failed,
                  "verified_on": inputs, "files": files, "host": host.describe()}
        atomic_write_json(out / REPORT, report)
    if failed:
        raise NseError(f"verification FAILED for {', '.join(failed)} (see {out / REPORT})")
    return report
