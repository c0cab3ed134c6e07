"""Issue 9, the issue's own example: fit the transfer on the 224-px skeleton's table alone, predict the same
space at another resolution and another width, and judge against this host's measurements of those.

Protocol (fixed before the 160-px and x0.75 tables were measured): the "device" is a host LiteRT table of the
nse27-proxyless224 space (224 px, x1.0, every entry measured on this host): the shipped
latency_tables/host-litert.json (2026-11-25) and a re-measure of the same keys on the day of the targets
(benchmarks/phones/host-litert-nse27-proxyless224-today.json). The targets are the same space at 160 px and at width
x0.75 (benchmarks/phones/spaces/), profiled on this host with ``nse-hw profile --runtime litert`` (1 thread, pinned,
caches evicted, median of 200 runs), that day. The transfer model is fitted on the device table exactly as
``nse-hw tables transfer`` fits a phone table (key features; anchored stem/head/classifier), and every target
key the device table lacks is predicted and compared with its measurement. Keys the device table has (same
shape in both spaces) are the day-to-day repeatability of one measurement. Reported:

- per key: MAPE and share within +-10%, for op entries (MBConv, rec) and for the stem/head/classifier/join units;
- per network: 50 architectures drawn uniformly from the space (seed 0), the sum of predicted entries against
  the sum of measured entries at the target size (errors of single blocks partly cancel in a sum).

    taskset -c 0 .venv/bin/python benchmarks/phones/host_resolution_transfer.py

The target tables are made with (each ~5 min on a quiet machine; converter on the other core):

    taskset -c 1 .venv/bin/nse-hw profile --runtime litert --space benchmarks/phones/spaces/nse27-proxyless160.yaml \\
        --out benchmarks/phones/host-litert-nse27-proxyless160.json --convert-cpus 0
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table
from nse_hw.latency.features import key_family
from nse_hw.latency.keys import arch_components
from nse_hw.latency.transfer import fit_transfer, predict_key
from nse_hw.space import load_space

HERE = Path(__file__).resolve().parent
TABLES = HERE.parents[1] / "latency_tables"
DEVICES = {"shipped 224 table (11-25)": TABLES / "host-litert.json",
           "224 re-measured the same day": HERE / "host-litert-nse27-proxyless224-today.json"}
TARGETS = {"160 px": "nse27-proxyless160", "x0.75 width": "nse27-proxyless224-w075"}
NETWORKS, NET_SEED = 50, 0


def errors(pred: dict[str, float], meas: LatencyTable) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = {"op": [], "unit": []}
    for k, ms in pred.items():
        out["op" if key_family(k) in ("mb", "rec") else "unit"].append(ms / meas.ms(k) - 1)
    return {g: np.array(v) for g, v in out.items()}


def fmt(e: np.ndarray) -> str:
    if not e.size:
        return "n=  0"
    a = np.abs(e)
    return (f"n={e.size:3d} MAPE {100 * a.mean():5.1f}% within 10% {100 * (a <= 0.1).mean():5.1f}% "
            f"bias {100 * e.mean():+5.1f}% worst {100 * e[a.argmax()]:+6.1f}%")


def summary(name: str, e: np.ndarray) -> dict[str, float | None]:
    a = np.abs(e)
    return {f"{name}_n": int(a.size), f"{name}_mape": float(100 * a.mean()) if a.size else None,
            f"{name}_within_10": float(100 * (a <= 0.1).mean()) if a.size else None}


def network_errors(space_name: str, target: LatencyTable, pred: dict[str, float]) -> np.ndarray:
    """Relative error of the predicted sum over ``NETWORKS`` uniform archs of the space (measured keys as is)."""
    space = load_space(HERE / "spaces" / f"{space_name}.yaml")
    rng = np.random.default_rng(NET_SEED)
    errs = []
    for _ in range(NETWORKS):
        keys = [kc for comp in arch_components(space.sample(rng)) for kc in comp.keys]
        meas = sum(n * target.ms(k) for k, n in keys)
        errs.append(sum(n * pred.get(k, target.ms(k)) for k, n in keys) / meas - 1)
    return np.array(errs)


def main() -> None:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for dname, dpath in DEVICES.items():
        device = load_table(dpath)
        model = fit_transfer(device, None)
        print(f"device: {dname} ({dpath.name}, {len(device.entries)} entries)")
        for tname, space_name in TARGETS.items():
            target = load_table(HERE / f"host-litert-{space_name}.json")
            pred, refused = {}, []
            for k, e in target.entries.items():
                if k in device or e["ms"] <= 0:  # at or below the invoke overhead: no ratio to judge
                    continue
                try:
                    pred[k] = predict_key(k, model, None)[0]
                except NseError:
                    refused.append(k)
            same = np.array([device.ms(k) / target.ms(k) - 1 for k, e in target.entries.items()
                             if k in device and e["ms"] > 0])
            e, net = errors(pred, target), network_errors(space_name, target, pred)
            pad = " " * len(tname)
            print(f"  {tname}: ops   {fmt(e['op'])}\n  {pad}  units {fmt(e['unit'])}"
                  f"\n  {pad}  networks (sum of entries, {NETWORKS}) {fmt(net)}"
                  f"\n  {pad}  same key in both tables (repeatability) {fmt(same)}; refused {len(refused)}")
            results.setdefault(dname, {})[tname] = {
                **summary("op", e["op"]), **summary("unit", e["unit"]), **summary("network", net),
                **summary("repeat", same), "refused": len(refused)}
    a, b = (load_table(p) for p in DEVICES.values())
    days = np.array([b.ms(k) / a.ms(k) - 1 for k in a.entries if key_family(k) in ("mb", "rec")
                     and a.ms(k) > 0 and b.ms(k) > 0])
    print(f"the two 224 tables, same op keys (day-to-day repeatability): {fmt(days)}; without the day's bias: "
          f"MAPE {100 * np.abs(days - days.mean()).mean():.1f}%")
    results["day_to_day"] = {**summary("op", days), "bias_pct": float(100 * days.mean()),
                             "mape_without_bias": float(100 * np.abs(days - days.mean()).mean())}
    (HERE / "host-resolution-transfer.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
