"""Predict real networks from their model files: torchvision MobileNetV2 / MnasNet / MobileNetV3, imported from
``.onnx`` and from ``.tflite``, priced on the shipped ``pixel1`` table beside the arch files and Google's figures;
on this host, predicted vs measured (LiteRT, 1 thread, core 0).

Protocol (fixed before any figure was looked at; nothing here is fitted):

* Networks: torchvision ``mobilenet_v2(width_mult=w, num_classes=1001)`` at the README grid's widths 0.5-1.4 and
  inputs 96-224 (17 networks), ``mnasnet0_5/0_75/1_0/1_3`` and ``mobilenet_v3_small/large`` at 224 (1000
  classes). Random weights (latency does not depend on them). Each is exported with the repo's exporters
  (``export_onnx``; ``export_tflite``, NHWC) into a cache outside the repository, then imported with
  :func:`nse_hw.export.models.import_model` from each file.
* pixel1: ``latency_tables/pixel1-tflite.json``, misses filled in memory by its stored transfer model (ReLU keys
  from their ReLU6 twins). Beside it, the arch file's prediction where one exists (configs/archs: MobileNetV2
  scaled by the README's width rule, MnasNet-B1 scaled with its head kept at 1280, MobileNetV3 from the paper's
  tables): the two must agree within 1%. MobileNetV2 also against Google's README figures through the table's
  stored ``google-readme`` setup map (the map and its figures are phone_grid.py's; not refitted here).
* Public figures kept apart (printed, never used to fit): MobileNetV3 paper (Howard et al. 2019, Table 3: Pixel 1,
  float, 1 core): Large 1.0 51 ms, Small 1.0 15.8 ms, MobileNetV2 1.0 64 ms in that setup; MnasNet paper (Tan et
  al. 2019): MnasNet-A1 78 ms (Pixel 1) -- not the torchvision B1, reported for scale only.
* Host (``--host``): the imported ``.tflite`` files timed whole with the LiteRT runner of profilers/host.py,
  1 thread, pinned to core 0, against ``host-litert`` predictions (its missing keys profiled first on this host
  into a scratch copy of the table, so the table file is not written).

    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latency/predict_models.py --export
    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latency/predict_models.py [--host]
        [--host-table THIS_CPUS_TABLE.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NSE_HW_MODEL_CACHE", Path.home() / ".cache" / "nse-hw" / "predict-models"))
OUT = REPO / "benchmarks" / "latency" / "predict-models.json"
MBV2_GRID = [(1.4, 224), (1.3, 224)] + [(w, r) for w in (1.0, 0.75, 0.5) for r in (224, 192, 160, 128, 96)]
KEPT_APART = {"mobilenet_v3_large": 51.0, "mobilenet_v3_small": 15.8}  # MobileNetV3 paper, Table 3, Pixel 1


def networks() -> list[tuple[str, str, int]]:
    """(label, model name for import_model, input size)."""
    nets = [(f"mobilenet_v2 x{w:g} {r}", f"mobilenet_v2@width_mult={w:g},num_classes=1001", r) for w, r in MBV2_GRID]
    nets += [(f"mnasnet{w} 224", f"mnasnet{w}", 224) for w in ("0_5", "0_75", "1_0", "1_3")]
    nets += [(f"{n} 224", n, 224) for n in ("mobilenet_v3_small", "mobilenet_v3_large")]
    return nets


def cache_file(label: str, ext: str) -> Path:
    return CACHE / (label.replace(" ", "_") + ext)


TFLITE_FIRST = ("mobilenet_v2 x1 224", "mobilenet_v3_large 224", "mobilenet_v3_small 224", "mnasnet1_0 224",
                "mobilenet_v2 x0.5 224", "mobilenet_v2 x1.4 224", "mobilenet_v2 x1 128", "mnasnet0_5 224")


def export_all(*, host_only: bool = False) -> None:
    """Every ``.onnx``, then the ``.tflite`` files (~2 min each on one shared core: the ones in TFLITE_FIRST
    first, so an export cut short still covers each family). ``host_only``: just the HOST_NETS' ``.tflite``."""
    from nse_hw.export.models import _build
    from nse_hw.export.onnx import export_onnx
    from nse_hw.export.tflite import export_tflite

    CACHE.mkdir(parents=True, exist_ok=True)
    nets = networks()
    order = [(".onnx", n) for n in nets] + [(".tflite", n) for n in sorted(
        nets, key=lambda n: TFLITE_FIRST.index(n[0]) if n[0] in TFLITE_FIRST else len(TFLITE_FIRST))]
    if host_only:
        order = [(ext, n) for ext, n in order if ext == ".tflite" and n[0] in HOST_NETS]
    for ext, (label, name, size) in order:
        path = cache_file(label, ext)
        if path.is_file():
            continue
        model = _build(name)
        if ext == ".onnx":
            export_onnx(model, (1, 3, size, size), path)
        else:
            export_tflite(model, (1, size, size, 3), path)
        print(f"exported {path.name}", flush=True)


# --- pixel1 ---------------------------------------------------------------------------------------------------

def arch_file_of(label: str, name: str, size: int) -> Any:
    """The arch file's network for ``label`` (scaled as torchvision builds it), or None."""
    from nse_hw.export.models import parse_name
    from nse_hw.space import load_arch
    from nse_hw.space.scale import scale_arch

    archs = REPO / "configs" / "archs"
    _, base, kw = parse_name(name)
    if base == "mobilenet_v2":
        return scale_arch(load_arch(archs / "mobilenetv2-1.0-224.json"), resolution=size,
                          width=kw.get("width_mult", 1.0), classes=kw.get("num_classes"))
    if base.startswith("mnasnet"):
        w = float(base.removeprefix("mnasnet").replace("_", "."))
        return scale_arch(load_arch(archs / "mnasnet-b1-1.0-224.json"), resolution=size, width=w, head="keep")
    files = {"mobilenet_v3_large": "mobilenetv3-large-224.json", "mobilenet_v3_small": "mobilenetv3-small-224.json"}
    return load_arch(archs / files[base]) if base in files else None


def price(comps: list[Any], table: Any) -> tuple[float, list[str]]:
    from nse_hw.latency.predict import predict_model

    pred, filled = predict_model(comps, table)
    return pred.total_ms, filled


def readme() -> dict[tuple[float, int], float]:
    import csv

    # ../shared beside the checkout (a worktree one level deeper: ../../shared)
    path = next((p / "shared" / "device-data" / "mobilenetv2_pixel1_google_readme.csv" for p in
                 (REPO.parent, REPO.parent.parent) if (p / "shared" / "device-data").is_dir()), Path("missing"))
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return {(float(m), int(r)): float(ms) for m, r, ms in csv.reader(lines[1:])}


def pixel1_report() -> dict[str, Any]:
    from nse_hw.export.models import import_model, parse_name
    from nse_hw.latency import arch_components, load_table
    from nse_hw.latency.setup import arch_parts, setup_map

    table = load_table(REPO / "latency_tables" / "pixel1-tflite.json")
    google = setup_map(table, "google-readme")
    figures = readme()
    rows = []
    for label, name, size in networks():
        _, base, kw = parse_name(name)
        ref = arch_file_of(label, name, size)
        row: dict[str, Any] = {"network": label, "name": name, "input": size}
        if ref is not None:
            row["arch_file_ms"], _ = price(arch_components(ref), table)
            row["arch_file_google_ms"] = google.apply(arch_parts(ref, table))
        for ext in (".onnx", ".tflite"):
            path = cache_file(label, ext)
            if not path.is_file():
                row[ext[1:]] = None
                continue
            imp = import_model(path)
            ms, filled = price(imp.components(), table)
            r = {"ms": ms, "predicted_keys": len(filled), "notes": imp.notes + list(imp.extra_notes.values()),
                 "same_arch_as_file": None if ref is None else imp.arch == ref}
            if not imp.extras:
                r["google_ms"] = google.apply(arch_parts(imp.arch, table))
            if ref is not None:
                r["vs_arch_file_pct"] = 100 * (ms / row["arch_file_ms"] - 1)
            row[ext[1:]] = r
        if base == "mobilenet_v2":
            row["readme_ms"] = figures.get((kw.get("width_mult", 1.0), size))
        if base in KEPT_APART:
            row["kept_apart_ms"] = KEPT_APART[base]
        rows.append(row)
        print_row(row)
    return {"table": "latency_tables/pixel1-tflite.json", "setup_map": "google-readme (phone_grid.py)",
            "rows": rows, "summary": summarize(rows)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fmt in ("onnx", "tflite"):
        got = [r for r in rows if r.get(fmt)]
        diffs = [abs(r[fmt]["vs_arch_file_pct"]) for r in got if "vs_arch_file_pct" in r[fmt]]
        errs = [100 * (r[fmt]["google_ms"] / r["readme_ms"] - 1) for r in got if r.get("readme_ms")
                and "google_ms" in r[fmt]]
        out[fmt] = {"imported": len(got), "max_abs_vs_arch_file_pct": max(diffs, default=None),
                    "readme_n": len(errs), "readme_mape": sum(map(abs, errs)) / len(errs) if errs else None,
                    "readme_within_10": sum(abs(e) <= 10 for e in errs) / len(errs) * 100 if errs else None}
    ref = [100 * (r["arch_file_google_ms"] / r["readme_ms"] - 1) for r in rows if r.get("readme_ms")]
    out["arch_file"] = {"readme_n": len(ref), "readme_mape": sum(map(abs, ref)) / len(ref),
                        "readme_within_10": sum(abs(e) <= 10 for e in ref) / len(ref) * 100}
    print(json.dumps(out, indent=1))
    return out


def print_row(r: dict[str, Any]) -> None:
    cells = [f"{r['network']:<24}", f"file {r.get('arch_file_ms', float('nan')):7.2f}"]
    for fmt in ("onnx", "tflite"):
        x = r.get(fmt)
        cells.append(f"{fmt} " + ("      -" if x is None else f"{x['ms']:7.2f} ({x.get('vs_arch_file_pct', 0):+.2f}%)"))
    if r.get("readme_ms"):
        cells.append(f"google {r['arch_file_google_ms']:6.1f} vs README {r['readme_ms']:6.1f}")
    if r.get("kept_apart_ms"):
        cells.append(f"paper {r['kept_apart_ms']} ms")
    print("  ".join(cells), flush=True)


# --- host ---------------------------------------------------------------------------------------------------

SCRATCH = Path(os.environ.get("NSE_HW_HOST_SCRATCH", "/tmp/nse-hw-predict-models-host"))


def profile_keys(keys: list[str], path: Path) -> int:
    """Measure ``keys`` the table at ``path`` lacks (the importer's extras: a transpose, a softmax) exactly as
    profile_host measures its units (same timer, evicted caches, minus the invoke overhead)."""
    from nse_hw.profilers.host import get_runner
    from nse_hw.profilers.pipeline import exported
    from nse_hw.profilers.table_builder import _net_of
    from nse_hw.profilers.timing import Evictor, UnitTimer
    from nse_hw.profilers.units import ExportJob, default_cache

    from nse_hw.latency import load_table

    table = load_table(path)
    todo = [k for k in dict.fromkeys(keys) if k not in table]
    meta = table.meta
    timer = UnitTimer(get_runner("litert", threads=1), meta["warmup"], meta["runs"], meta["cpu_cache"], Evictor())
    for job, file in exported([ExportJob.for_key(k) for k in todo], runtime="litert", cache=default_cache(),
                              convert_cpus=set()):  # all converted before timing: nothing shares the timed core
        table.set(job.name, source="measured", **_net_of(timer.stats(file), meta["invoke_overhead"]["ms"]))
    table.save()
    return len(todo)


HOST_NETS = ("mobilenet_v2 x1 224", "mnasnet1_0 224", "mobilenet_v3_small 224", "mobilenet_v3_large 224")


def cpu_times(session: Any, *, warmup: int, runs: int) -> Any:
    """Per-invoke CPU time (ms) of the calling thread (LiteRT with 1 thread runs XNNPACK on it): on a core other
    jobs share, wall time counts the slices the scheduler gives them; this does not (their cache traffic stays)."""
    import time

    import numpy as np

    session._bind_timing_input()
    for _ in range(warmup):
        session._invoke()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.thread_time_ns()
        session._invoke()
        out[i] = (time.thread_time_ns() - t0) / 1e6
    return out


def host_report(base: Path, *, warmup: int = 20, runs: int = 50, rounds: int = 4) -> dict[str, Any]:
    """Predictions of the host table ``base`` (missing keys profiled here into a scratch copy) vs the .tflite
    files timed. ``base`` should be this CPU's table (e.g. one ``profile --quick`` built here)."""
    import shutil

    import numpy as np
    from nse_hw.profilers.host import get_runner
    from nse_hw.profilers.host import summarize as stats
    from nse_hw.profilers.table_builder import profile_host

    from nse_hw.export.models import import_model
    from nse_hw.latency import load_table

    nets = [(label, cache_file(label, ".tflite")) for label in HOST_NETS if cache_file(label, ".tflite").is_file()]
    imps = {label: import_model(path) for label, path in nets}
    scratch = SCRATCH / base.name  # kept between runs: keys measured once
    if not scratch.is_file():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        shutil.copy(base, scratch)
    meta = load_table(scratch).meta  # its own timing settings (a quick table times 100 runs, a full one 200)
    profiled = profile_host(None, runtime="litert", out=scratch, threads=1, convert_cpus=set(), progress=False,
                            warmup=meta["warmup"], runs=meta["runs"],
                            archs=tuple((label, imp.arch) for label, imp in imps.items()))
    extra = [k for imp in imps.values() for c in imp.extras for k, _ in c.keys]
    n_extra = profile_keys(extra, scratch)
    table = load_table(scratch)
    runner = get_runner("litert", threads=1)
    times: dict[str, list[np.ndarray]] = {label: [] for label, _ in nets}
    cpu: dict[str, list[np.ndarray]] = {label: [] for label, _ in nets}
    for _ in range(rounds):  # interleaved rounds: a slow spell hits every network alike
        for label, path in nets:
            times[label].append(runner.load(path).time(warmup=warmup, runs=runs))
            cpu[label].append(cpu_times(runner.load(path), warmup=warmup, runs=runs))
    load = os.getloadavg()
    rows = []
    for label, _ in nets:
        ms, filled = price(imps[label].components(adds_in_ops=table.adds_in_ops), table)
        measured, on_cpu = stats(np.concatenate(times[label])), stats(np.concatenate(cpu[label]))
        rows.append({"network": label, "predicted_ms": ms, "measured_ms": measured["ms"],
                     "error_pct": 100 * (ms / measured["ms"] - 1), "measured": measured,
                     "cpu_ms": on_cpu["ms"], "cpu_error_pct": 100 * (ms / on_cpu["ms"] - 1), "cpu": on_cpu,
                     "notes": imps[label].notes + list(imps[label].extra_notes.values())})
        print(f"host {label:<24} predicted {ms:7.2f}  wall {measured['ms']:7.2f} ({rows[-1]['error_pct']:+.1f}%)  "
              f"cpu {on_cpu['ms']:7.2f} ({rows[-1]['cpu_error_pct']:+.1f}%)", flush=True)
    from nse_hw.hostcpu import cpu_status, this_cpu

    base_meta = load_table(base).meta
    return {"table": f"{base} (+ keys profiled here)", "table_cpu_status": cpu_status(base_meta, this_cpu()),
            "table_quick": bool(base_meta.get("quick")),
            "calibration": table.meta.get("calibration", {}).get("slope") is not None,
            "profiled_keys": len(set(table.entries) - set(load_table(base).entries)),
            "profiled_this_run": profiled.measured + n_extra,
            "cpu": table.meta.get("host", {}).get("cpu"), "threads": 1, "warmup": warmup, "runs": runs * rounds,
            "load_avg_during_timing": [round(x, 2) for x in load], "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """The tables of RESULTS-predict-models.md, from the JSON this script wrote."""
    def cell(x: Any, fmt: str = "{:.2f}") -> str:
        return "-" if x is None else fmt.format(x)

    lines = ["| network | arch file | from .onnx | vs file | from .tflite | vs file | google-readme map | README |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["pixel1"]["rows"]:
        o, t = r.get("onnx") or {}, r.get("tflite") or {}
        lines.append(f"| {r['network']} | {cell(r.get('arch_file_ms'))} | {cell(o.get('ms'))} | "
                     f"{cell(o.get('vs_arch_file_pct'), '{:+.2f}%')} | {cell(t.get('ms'))} | "
                     f"{cell(t.get('vs_arch_file_pct'), '{:+.2f}%')} | "
                     f"{cell(r.get('arch_file_google_ms'), '{:.1f}')} | {cell(r.get('readme_ms'), '{:.1f}')} |")
    if "host" in result:
        lines += ["", "| network (host, LiteRT 1 thread) | predicted ms | wall ms (error) | thread CPU ms (error) |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {r['network']} | {r['predicted_ms']:.2f} | {r['measured_ms']:.2f} ({r['error_pct']:+.1f}%) | "
                  f"{r['cpu_ms']:.2f} ({r['cpu_error_pct']:+.1f}%) |" for r in result["host"]["rows"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", action="store_true", help="export every network to the cache (slow: ~40 min)")
    ap.add_argument("--export-host", action="store_true", help="export only the --host networks' .tflite files")
    ap.add_argument("--host", action="store_true", help="also time the imported .tflite files on this host")
    ap.add_argument("--host-only", action="store_true", help="with --host: skip the pixel1 report")
    ap.add_argument("--host-table", type=Path, default=REPO / "latency_tables" / "host-litert.json",
                    help="with --host: the host table to predict with, this CPU's (e.g. `profile --quick`'s) "
                         "[default: the shipped host-litert.json]")
    ap.add_argument("--markdown", action="store_true", help="print the results tables from the JSON and stop")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.export or args.export_host:
        export_all(host_only=args.export_host)
        return
    if args.markdown:
        print(markdown(json.loads(OUT.read_text())))
        return
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}  # a section not rerun is kept
    if args.host:
        result["host"] = host_report(args.host_table)
    if not args.host_only:
        result["pixel1"] = pixel1_report()
    from nse_hw.atomic import atomic_write_json

    atomic_write_json(OUT, result)
    print(json.dumps({"wrote": str(OUT.relative_to(REPO))}))


if __name__ == "__main__":
    main()
