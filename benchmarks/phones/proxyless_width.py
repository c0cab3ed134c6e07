"""Which ProxylessNAS-Mobile did the real Pixel 1 profile time: 24 or 32 channels at 56x56?

Per op of the real benchmark_model profile (../shared/device-data), MACs under each candidate arch file, and the
throughput (MMAC per ms) of layers 1-3 (the ones the 56x56 width touches) against their neighbours (layers 4-7,
28x28, same op types): a phone runs one kernel at a similar rate on similar shapes, so the right width is the one
that puts layers 1-3 in line with their neighbours.

    taskset -c 0 .venv/bin/python benchmarks/phones/proxyless_width.py
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from nse_hw.space import load_arch
from nse_hw.space.arch import out_size

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / ".." / "shared" / "device-data" / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"
CANDIDATES = {"24 (skeleton)": "proxylessnas-mobile-224.json", "32 (released)": "proxylessnas-mobile-released-224.json"}
PARTS = ("expand", "depthwise", "project")


def op_macs(arch_file: str) -> dict[tuple[int, str], float]:
    """(layer, part) -> MMACs of each conv of an MBConv layer."""
    arch = load_arch(REPO / "configs" / "archs" / arch_file)
    out = {}
    for i, ((h, w, c), spec) in enumerate(zip(arch.layer_inputs(), arch.layers, strict=False)):
        op = spec.ops[0]
        mid, oh, ow = c * op.e, out_size(h, spec.stride), out_size(w, spec.stride)
        out[(i, "expand")] = h * w * c * mid / 1e6 if op.e != 1 else 0.0
        out[(i, "depthwise")] = oh * ow * mid * op.k * op.k / 1e6
        out[(i, "project")] = oh * ow * mid * spec.out / 1e6
    return out


def profile_ms() -> dict[tuple[int, str], float]:
    from nse_hw.profilers.benchmark_model import parse_benchmark_output

    ms = {}
    for node in parse_benchmark_output(PROFILE.read_text()).nodes:
        m = re.match(r"MNasNet/expanded_conv(?:_(\d+))?/[^/]+/(expand|depthwise|project)/", node.name)
        if m:
            ms[(int(m.group(1) or 0), m.group(2))] = node.avg_ms
    return ms


def main() -> None:
    if not PROFILE.is_file():
        raise SystemExit(f"no {PROFILE}")
    ms = profile_ms()
    for label, f in CANDIDATES.items():
        macs = op_macs(f)
        print(f"56x56 width {label}: MMAC/ms of layers 1-3 (and their difference from the median of layers 4-7)")
        for part in PARTS:
            ref = statistics.median(macs[(i, part)] / ms[(i, part)] for i in range(4, 8))
            rows = []
            for i in (1, 2, 3):
                if (i, part) in ms and macs[(i, part)]:
                    rate = macs[(i, part)] / ms[(i, part)]
                    rows.append(f"layer{i} {rate:5.2f} ({100 * (rate / ref - 1):+4.0f}%)")
            print(f"  {part:<9} neighbours {ref:5.2f}   " + "   ".join(rows))


if __name__ == "__main__":
    main()
