"""Leave-one-out error of host -> Pixel 1 transfer models on the public Pixel 1 MBConv blocks.

Prints MAPE and the share within +-10% for: one ratio on host latency, one ratio per kernel size, NNLS on MACs,
+ bytes, + middle-activation bytes (our key features), + host latency, and the per-shape correction; then the
element-wise add model (fitted on the real profile's ADD nodes) against what the idskip:1 blocks imply.

    taskset -c 0 .venv/bin/python benchmarks/phones/transfer_loo.py [--host latency_tables/host-litert.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nse_hw.latency import LatencyTable, load_table
from nse_hw.latency.family import _loo, _nnls_relative, fit_family, fit_rows, shape_of
from nse_hw.latency.features import key_features
from nse_hw.latency.importers import import_table
from nse_hw.space import load_arch

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "device-data"
PIXEL1 = SHARED / "proxylessnas_mobile_trim_pixel1.yaml"
PROFILE = SHARED / "proxylessnas_mobile_pixel1_tflite_benchmark_profile.txt"
MACS = ["dense_mmacs", "dw_k3_mmacs", "dw_k5_mmacs", "dw_k7p_mmacs"]


def pixel1_table(*, with_adds: bool) -> LatencyTable:
    table = None
    if with_adds:
        from nse_hw.profilers.benchmark_model import parse_benchmark_output

        r = parse_benchmark_output(PROFILE.read_text())
        arch = load_arch(REPO / "configs/archs/proxylessnas-mobile-released-224.json")  # the profiled network
        table, _ = import_table(PROFILE, fmt="benchmark-profile", device="pixel1", arch=arch,
                                profile=(r.count, [(n.type, n.avg_ms) for n in r.nodes]))
    return import_table(PIXEL1, fmt="proxylessnas", device="pixel1", table=table)[0]


def summary(errs: np.ndarray) -> str:
    e = np.abs(errs)
    return f"MAPE {e.mean() * 100:5.1f}%  within +-10% {np.mean(e <= 0.1) * 100:5.1f}%  (n={len(e)})"


def ratio_loo(y: np.ndarray, h: np.ndarray, groups: list[str]) -> np.ndarray:
    """Leave-one-out of device = r_group * host, r_group the median ratio of the group's other entries."""
    errs = np.empty(len(y))
    for i in range(len(y)):
        others = [j for j in range(len(y)) if j != i and groups[j] == groups[i]]
        r = np.median(y[others] / h[others])
        errs[i] = (r * h[i] - y[i]) / y[i]
    return errs


def nnls_loo(keys: list[str], y: np.ndarray, names: list[str], host: LatencyTable | None = None) -> np.ndarray:
    feats = [{"const": 1.0, **key_features(k), **({"host_ms": host.ms(k)} if host else {})} for k in keys]
    x = np.array([[f[n] for n in ["const", *names]] for f in feats])
    return _loo(x, y, [shape_of(k) for k in keys])[0]


def block_figures(table: LatencyTable, host: LatencyTable | None) -> None:
    keys, y = fit_rows(table, None)["mb"]
    y = np.asarray(y)
    print(f"Pixel 1 MBConv blocks (residual adds subtracted): {len(keys)}")
    shared = [i for i, k in enumerate(keys) if host is not None and k in host]
    if host is not None and len(shared) < 20:
        print(f"  host table {host.name} shares only {len(shared)} blocks: host rows skipped (profile it first)")
        host = None
    if host is not None:
        ks, ys = [keys[i] for i in shared], y[shared]
        h = np.array([host.ms(k) for k in ks])
        print(f"  host table {host.name}: shares {len(ks)} of them")
        print(f"  one ratio on host latency          {summary(ratio_loo(ys, h, ['all'] * len(ks)))}")
        kgroups = [k.split('_')[1] for k in ks]
        print(f"  one ratio per kernel size          {summary(ratio_loo(ys, h, kgroups))}")
        print(f"  NNLS on host latency alone         {summary(nnls_loo(ks, ys, [], host))}")
    print(f"  NNLS MACs (dense, dw per k)        {summary(nnls_loo(keys, y, MACS))}")
    print(f"  + bytes moved (io)                 {summary(nnls_loo(keys, y, MACS + ['io_mb']))}")
    print(f"  + middle activation bytes          {summary(nnls_loo(keys, y, MACS + ['io_mb', 'mid_mb']))}")
    if host is not None:
        print(f"  + host latency (shared keys)       "
              f"{summary(nnls_loo(ks, ys, MACS + ['io_mb', 'mid_mb', 'host_ms'], host))}")
    fm = fit_family("mb", keys, list(y))
    print(f"  key features + per-shape factor    MAPE {fm.loo_mape:5.1f}%  within +-10% {fm.loo_within_10:5.1f}%")
    print("  coefficients (ms per MMAC / per MB): "
          + ", ".join(f"{n}={c:.4g}" for n, c in zip(fm.features, fm.coef, strict=True) if c))


def join_figures(table: LatencyTable, raw: LatencyTable) -> None:
    keys, y = fit_rows(table, None)["join"]
    fm = fit_family("join", keys, y)
    slope = fm.coef[fm.features.index("io_mb")]
    print(f"\nElement-wise add model from the profile's 13 ADD nodes ({len(keys)} shapes): "
          f"{fm.coef[0]:.4f} ms + {slope:.4f} ms/MB; leave-one-out MAPE {fm.loo_mape:.1f}%")
    # what the idskip:1 blocks imply: refit the blocks with one more feature, the residual add's bytes
    bkeys, by = fit_rows(raw, None)["mb"]
    residual = np.array([bool(raw.entries[k].get("includes_residual_add")) for k in bkeys], dtype=float)
    add_mb = np.array([key_features(f"add|{k.split('|')[1]}")["io_mb"] for k in bkeys]) * residual
    names = ["const", *MACS, "io_mb", "mid_mb"]
    x = np.array([[{"const": 1.0, **key_features(k)}[n] for n in names] for k in bkeys])
    coef = _nnls_relative(np.c_[x, add_mb], np.asarray(by))
    print(f"  idskip:1 vs idskip:0 blocks imply {coef[-1]:.4f} ms/MB for the residual add "
          f"(unidentifiable from these 69 blocks: residual blocks are exactly the stride-1 same-width ones)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=str(REPO / "latency_tables/host-litert.json"))
    args = ap.parse_args()
    host = load_table(args.host) if Path(args.host).exists() else None
    block_figures(pixel1_table(with_adds=True), host)
    join_figures(pixel1_table(with_adds=True), pixel1_table(with_adds=False))


if __name__ == "__main__":
    main()
