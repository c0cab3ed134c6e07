"""Build this CPU's quick table (`profile --quick`) from a cold cache, then judge it against the full table on the
same whole networks measured once.

    taskset -c 0 .venv/bin/python benchmarks/latency/quick_table.py --work /tmp/q \
        --samples 50 --seed 0

Step 1 runs `nse-hw profile --device host --runtime litert --space nse27-proxyless224 --quick` with a fresh export
cache and reports its wall time and CPU seconds: with ``--convert-cpus none`` every conversion happens before timing
(run it pinned to one core for the one-core figure); with ``--convert-cpus default`` the pipeline's own choice (an
unpinned run has no spare core, so it converts on every core before timing: the "<= 3 min on 2 cores" figure). Step
2 draws ``--samples`` networks (seed ``--seed``, not a calibration seed), exports and times each once as `latency
validate` does (the tables' runtime, threads, warm-up, runs, 4 interleaved rounds), and scores both tables' raw and
calibrated predictions against those same measurements. ``--also NAME=TABLE`` scores more tables (e.g. a full
profile of this CPU) on the stored measurements; they can be added after the networks were measured. Prints figures;
it is not a test. """

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from nse_hw.profilers.netbench import Bench, measure_archs, recheck, sample_archs
from nse_hw.profilers.speed import ProbeSettings

from nse_hw.hostcpu import describe, this_cpu
from nse_hw.latency import LatencyTable, calibrate, load_table, predict
from nse_hw.latency.calibration import error_summary
from nse_hw.space import load_space

NSE_HW = str(Path(sys.executable).with_name("nse-hw"))
SPACE = "nse27-proxyless224"


def build(out: Path, cache: Path, convert_cpus: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the command and its converters) of the quick build. On a
    shared core the CPU seconds are what the build costs; the wall time also holds other jobs' turns."""
    cmd = [NSE_HW, "profile", "--device", "host", "--runtime", "litert", "--space", SPACE, "--quick",
           "--out", str(out), "--cache", str(cache)] + ([] if convert_cpus == "default" else
                                                          ["--convert-cpus", convert_cpus])
    print("$", " ".join(cmd), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def score(table, archs, measured: np.ndarray, per_probe: np.ndarray | None = None) -> dict:
    """Both predictions of ``table`` against the networks' times: on the table's scale (``per_probe`` x its probe
    reference) where it has a speed probe and the networks were measured with it, else as timed."""
    raw = np.array([predict(a, table).lut_sum_ms for a in archs])
    cal = np.array([calibrate(r, table) for r in raw])
    ref = (table.meta.get("speed") or {}).get("reference_ms")
    on_scale = bool(ref) and per_probe is not None  # measurements() gives per_probe for every network or none
    truth = per_probe * ref if on_scale else measured
    out = {"table": str(table.path), "raw": error_summary(raw, truth),
           "calibrated": error_summary(cal, truth) if table.meta.get("calibration") else None,
           "lut_sum_ms": raw.tolist(), "calibrated_ms": cal.tolist(), "on_probe_scale": on_scale}
    if on_scale:
        out |= {"probe_reference_ms": ref, "as_timed": error_summary(cal, measured)}
    return out


def measurements(batches: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    """The networks' times as timed, and in probe times where every batch was measured with the probe."""
    meas = np.array([x for b in batches for x in b["measured_ms"]])
    if not all("per_probe" in b for b in batches):
        return meas, None
    return meas, np.array([x for b in batches for x in b["per_probe"]])


# the report's own entries: an --also table's scores go under its NAME at the top level, so it must not be one
RESERVED = frozenset({
    "quick", "full", "cpu", "cores_allowed", "quick_table", "build_wall_s", "build_cpu_s", "build_convert_cpus",
    "load_avg_before_build", "load_avg_after_build", "quick_meta", "quick_calibration", "samples", "seed",
    "validate_cores", "batches", "networks_done", "dropped_batches", "guard_rechecks", "stopped", "mended"})


def show(name: str, s: dict) -> None:
    for kind in ("raw", "calibrated", "as_timed"):
        if v := s.get(kind):
            scale = "probe scale" if s.get("on_probe_scale") else "as timed"
            label = kind if kind == "as_timed" else f"{kind} ({scale})"
            print(f"  {name:<6} {label:<24} n={v['n']} within ±10%: {100 * v['within_10pct']:.0f}%  MAPE "
                  f"{v['mape']:.2f}%  worst {v['max_abs_pct_err']:.1f}%  bias {v['bias_pct']:+.2f}%")


def save(path: Path | None, report: dict) -> None:
    if path:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        tmp.replace(path)


def recheck_all(table: LatencyTable, work: Path) -> dict:
    """Re-time all of a quick table's stored check networks now, with the settings they were measured with (what
    `latency validate` does first, for 4): how far this machine has drifted since the table was built."""
    rec = recheck(table, nets=table.meta["calibration"]["n"], cache=work / "recheck-cache", convert_cpus=set())
    assert rec is not None, f"{table.name} stores no check networks of this CPU"
    return rec


def recheck_table(table_path: Path, work: Path, report_path: Path) -> None:
    """``recheck_all`` of the table at ``table_path``, appended to the report's ``rechecks``."""
    table = load_table(table_path)
    rec = recheck_all(table, work)
    rec.update({"table": str(table_path), "built": table.meta["quick"].get("created"), "load_avg": os.getloadavg()})
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report.setdefault("rechecks", []).append(rec)
    save(report_path, report)
    print(f"{table_path}: check networks now / at build: " + ", ".join(f"{r:.3f}" for r in rec["now_over_then"])
          + f" (median {rec['median_ratio']:.3f})")


GUARD_TRIES, GUARD_WAITS, GUARD_WAIT_S = 3, 5, 120


def guard_check(quick: LatencyTable, args: argparse.Namespace, report: dict, *, before: int) -> bool:
    """Re-time the quick table's check networks (stored in the report before network ``before``): True if their
    median is within ±``args.guard`` of the build."""
    rec = recheck_all(quick, args.work)
    rec.update(before_network=before, load_avg=os.getloadavg())
    report.setdefault("guard_rechecks", []).append(rec)
    save(args.out, report)
    ok = abs(rec["median_ratio"] - 1) <= args.guard
    print(f"guard before network {before}: check networks at {rec['median_ratio']:.3f}x the build"
          + ("" if ok else f" (beyond ±{args.guard:.0%}: the batch next to it is measured again)"), flush=True)
    return ok


def wait_steady(quick: LatencyTable, args: argparse.Namespace, report: dict, *, before: int) -> None:
    """After a drifted recheck: wait and recheck until the machine is back within the guard (at most
    GUARD_WAITS times); stop the run if it never is."""
    for _ in range(GUARD_WAITS):
        time.sleep(GUARD_WAIT_S)
        if guard_check(quick, args, report, before=before):
            return
    report["stopped"] = f"before network {before}: the machine stayed beyond ±{args.guard:.0%} of the build"
    save(args.out, report)
    raise SystemExit(report["stopped"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recheck", type=Path, help="only re-measure this table's check networks and compare")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--full", default="latency_tables/host-litert.json")
    ap.add_argument("--quick", type=Path, help="an existing quick table (skips the build)")
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=10, help="networks measured together (results saved after each)")
    ap.add_argument("--convert-cpus", default="none", help="the build's --convert-cpus ('default': the pipeline's "
                    "choice; unpinned, one converter per core before timing) [default: none: all before timing]")
    ap.add_argument("--guard", type=float, help="re-time the quick table's check networks before the first batch "
                    "and after each; a batch whose bracketing rechecks are not both within ±GUARD of the build "
                    f"(e.g. 0.03) is measured again, at most {GUARD_TRIES} times")
    ap.add_argument("--probe", action=argparse.BooleanOptionalAction, default=True,
                    help="time the quick table's speed probe between networks (where it has one) [default: on]")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=TABLE",
                    help="another table to score on the same measurements (repeatable)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("quick-table-validate.json"),
                    help="the report; an existing one is resumed (measured batches kept) [default: "
                         "quick-table-validate.json beside this script]")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.recheck:
        recheck_table(args.recheck, args.work, args.out)
        return
    report: dict = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    report.setdefault("cpu", this_cpu())
    report.setdefault("cores_allowed", sorted(os.sched_getaffinity(0)))
    print(f"CPU: {describe(report['cpu'])}; cores {report['cores_allowed']}; load {os.getloadavg()}", flush=True)
    quick_path = args.quick or Path(report.get("quick_table") or args.work / "host-litert-quick.json")
    if not quick_path.exists():
        report["load_avg_before_build"] = os.getloadavg()
        wall, cpu = build(quick_path, args.work / f"cold-cache-{int(time.time())}", args.convert_cpus)
        report.update({"quick_table": str(quick_path), "build_wall_s": round(wall, 1), "build_cpu_s": round(cpu, 1),
                       "build_convert_cpus": args.convert_cpus, "load_avg_after_build": os.getloadavg()})
        print(f"quick table built in {wall:.0f} s wall, {cpu:.0f} s CPU (load {report['load_avg_after_build']})",
              flush=True)
        save(args.out, report)
    quick, full = load_table(quick_path), load_table(args.full)
    for k in ("runtime", "threads"):  # timing settings may differ (--quick times fewer runs); validation uses full's
        assert quick.meta.get(k) == full.meta.get(k), k
    report["quick_meta"] = quick.meta["quick"]
    report["quick_calibration"] = {k: quick.meta["calibration"].get(k) for k in (
        "slope", "intercept_ms", "n", "seed", "loo_mape", "form", "raw_mape")}
    also_args = [a.split("=", 1) for a in args.also]
    if bad := [a for a in also_args if len(a) != 2 or a[0] in RESERVED]:
        ap.error(f"--also NAME=TABLE: {'='.join(bad[0])!r}: NAME must not be one of the report's own entries "
                 f"({', '.join(sorted(RESERVED))})")
    also = {name: load_table(path) for name, path in also_args}
    archs = sample_archs(load_space(SPACE), samples=args.samples, seed=args.seed)
    # timed as the --full table's networks were; with the quick table's speed probe where it has one, so each
    # table with a probe is scored on its own scale (score) and the others as timed
    bench = replace(Bench.for_table(full, cache=args.work / "val-cache", convert_cpus=set()),
                    probe=ProbeSettings.of(quick.meta) if args.probe else None)
    report.update({"samples": args.samples, "seed": args.seed, "validate_cores": sorted(os.sched_getaffinity(0))})
    batches = report.setdefault("batches", [])
    measured_before = sum(len(b["measured_ms"]) for b in batches)
    if measured_before:  # rescored on what is already measured (tables added later, or a report to mend)
        meas, per_probe = measurements(batches)
        for name, table in {"quick": quick, "full": full, **also}.items():
            report[name] = score(table, archs[:measured_before], meas, per_probe)
            show(name, report[name])
        save(args.out, report)
    steady = guard_check(quick, args, report, before=len(batches) * args.batch) if args.guard else True
    for start in range(len(batches) * args.batch, args.samples, args.batch):
        part = archs[start:start + args.batch]
        for _ in range(GUARD_TRIES if args.guard else 1):
            if not steady:
                wait_steady(quick, args, report, before=start)
            t0, load0 = time.perf_counter(), os.getloadavg()
            got = measure_archs(part, bench, desc=f"validate {start}-{start + len(part) - 1}")
            record = {"first": start, "measured_ms": [m.get("as_timed_ms", m["ms"]) for m in got],
                      "wall_s": round(time.perf_counter() - t0, 1), "load_avg": [load0, os.getloadavg()]}
            if bench.probe:  # also in probe times, and how slow the machine ran against the quick table's build
                record |= {"per_probe": [m["per_probe"] for m in got], "probe_ratio": [m["probe_ratio"] for m in got]}
            steady = guard_check(quick, args, report, before=start + len(part)) if args.guard else True
            if steady:  # the machine held still on both sides of the batch
                break
            report.setdefault("dropped_batches", []).append(record)  # the machine moved: measured again
            save(args.out, report)
        else:
            report["stopped"] = f"batch {start}: the machine drifted beyond ±{args.guard:.0%} {GUARD_TRIES} times"
            save(args.out, report)
            raise SystemExit(report["stopped"])
        batches.append(record)
        done = archs[:start + len(part)]
        meas, per_probe = measurements(batches)
        report.update({"networks_done": len(done), "quick": score(quick, done, meas, per_probe),
                       "full": score(full, done, meas, per_probe)})
        report.update({name: score(table, done, meas, per_probe) for name, table in also.items()})
        save(args.out, report)
        print(f"{len(done)} of {args.samples} networks (seed {args.seed}), {meas.min():.1f}-{meas.max():.1f} ms, "
              "measured once for both tables:", flush=True)
        show("quick", report["quick"])
        show("full", report["full"])
        for name in also:
            show(name, report[name])


if __name__ == "__main__":
    main()
