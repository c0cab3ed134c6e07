"""Predicted Pixel 1 latency of classic networks from the shipped pixel1-tflite table, against real numbers.

For ProxylessNAS-Mobile the real per-op benchmark_model profile (a phone, 1 thread, 80.67 ms) is compared part by
part with the table. Keys outside the table's space are predicted with its stored transfer model (fill_missing).
Our arch files follow NSE's layer rule (a residual layer is the mean of op and identity: add + 0.5 scale); the
"original structure" line drops the scale entries, which the published networks do not have.

    taskset -c 0 .venv/bin/python benchmarks/phones/transfer_networks.py
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from nse_hw.latency import arch_components, load_table, predict
from nse_hw.latency.transfer import fill_missing
from nse_hw.space import load_arch

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / ".." / "shared" / "device-data" / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"
# Pixel 1 latencies the papers report (TFLite, one big core, batch 1)
PAPER_MS = {"mobilenetv2-1.0-224": ("MobileNetV2 paper, Table 4", 75.0),
            "mnasnet-a1-224": ("MnasNet paper, Table 1", 78.0),
            "proxylessnas-mobile-released-224": ("ProxylessNAS paper, Table 2", 78.0)}


def network_rows() -> None:
    table = load_table(REPO / "latency_tables/pixel1-tflite.json")
    print(f"{'network':<26} {'pred ms':>8} {'no-scale':>9} {'predicted keys':>15}   paper (Pixel 1)")
    for name in ("mobilenetv2-1.0-224", "proxylessnas-mobile-released-224", "mnasnet-a1-224"):
        arch = load_arch(REPO / f"configs/archs/{name}.json")
        keys = [k for c in arch_components(arch) for k, _ in c.keys]
        filled = fill_missing(keys, table)
        pred = predict(arch, table)
        scale_ms = sum(n * table.ms(k) for c in arch_components(arch) for k, n in c.keys if k.startswith("scale|"))
        n_pred = sum(table.entries[k]["source"] == "predicted" for k in set(keys))
        src, ms = PAPER_MS[name]
        print(f"{name:<26} {pred.total_ms:8.2f} {pred.total_ms - scale_ms:9.2f} {n_pred:7d}/{len(set(keys)):<3d}"
              f" (+{len(filled)} new)   {ms:.0f} ms ({src})")


def profile_parts() -> dict[str, float]:
    from nse_hw.profilers.benchmark_model import parse_benchmark_output

    parts: dict[str, float] = defaultdict(float)
    for node in parse_benchmark_output(PROFILE.read_text()).nodes:
        m = re.match(r"MNasNet/(expanded_conv(?:_(\d+))?|Conv_1|Conv|Logits)/", node.name)
        assert m, node.name
        part = (f"layer{int(m.group(2) or 0)}" if m.group(1).startswith("expanded") else
                {"Conv": "stem", "Conv_1": "head", "Logits": "classifier"}[m.group(1)])
        parts[part] += node.avg_ms
    return parts


def proxyless_parts() -> None:
    if not PROFILE.is_file():
        print(f"(no {PROFILE.name}: skipping the per-part comparison)")
        return
    table = load_table(REPO / "latency_tables/pixel1-tflite.json")
    arch = load_arch(REPO / "configs/archs/proxylessnas-mobile-released-224.json")
    fill_missing([k for c in arch_components(arch) for k, _ in c.keys], table)  # the 32-wide blocks 1-3
    real = profile_parts()
    print("\nProxylessNAS-Mobile on the phone, part by part (real profile vs table, no scale entries):")
    tot_t = tot_r = 0.0
    for comp in arch_components(arch):
        t = sum(n * table.ms(k) for k, n in comp.keys if not k.startswith("scale|"))
        r = real[comp.name]
        tot_t, tot_r = tot_t + t, tot_r + r
        srcs = "/".join(sorted({table.entries[k]["source"][:4] for k, _ in comp.keys if not k.startswith("scale")}))
        print(f"  {comp.name:<11} real {r:6.3f}  table {t:6.3f}  ({(t / r - 1) * 100:+6.1f}%, {srcs})")
    print(f"  {'sum':<11} real {tot_r:6.2f}  table {tot_t:6.2f}  ({(tot_t / tot_r - 1) * 100:+.1f}%); "
          f"the profile's timed runs average 80.67 ms")


if __name__ == "__main__":
    network_rows()
    proxyless_parts()
