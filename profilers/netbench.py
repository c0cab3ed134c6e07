"""Whole networks against their tables: measure end to end, validate predictions, fit a table's calibration.

Networks are exported and timed exactly as the table's entries were (same runtime, threads, weight seed,
warm-up and runs), so the only difference between a prediction and a measurement is the network itself.
A calibration is always checked on other networks than those it was fitted on: validation refuses the
calibration's seed and any of its networks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from nse_hw.profilers.host import RUNNERS, get_runner, summarize
from nse_hw.profilers.pipeline import exported
from nse_hw.profilers.speed import ProbeSettings, SpeedProbe
from nse_hw.profilers.timing import Evictor, UnitTimer
from nse_hw.profilers.units import ExportJob, arch_hash, default_cache

from nse_hw import __version__
from nse_hw.errors import NseError
from nse_hw.hostcpu import OTHER, cpu_status, this_cpu
from nse_hw.latency import LatencyTable, calibrate, predict
from nse_hw.latency.calibration import error_summary, fit_affine, pct_errors
from nse_hw.latency.table import table_kernels, table_precision, utc_now
from nse_hw.progress import progress_bar
from nse_hw.space import Arch, SearchSpace, format_layer, load_space


@dataclass(frozen=True)
class Bench:
    """How to measure: the table's runtime and threads, plus timing and export settings."""

    runtime: str
    threads: int
    warmup: int = 20
    runs: int = 200
    cache: Path | None = None
    convert_cpus: set[int] | None = None
    progress: bool | None = None
    rounds: int = 4
    precision: str = "float32"  # int8: networks quantised as `nse-hw export --int8` does, like the table's units
    kernels: str = "xnnpack"  # LiteRT's op resolver path, the table's (meta.kernels)
    probe: ProbeSettings | None = None  # the table's speed probe: put each network's times on the table's scale

    @classmethod
    def for_table(cls, table: LatencyTable, **kw: Any) -> Bench:
        meta = table.meta
        if meta.get("device") != "host":
            raise NseError(f"table {table.name} is for device {meta.get('device')!r}; whole networks can be "
                           "measured on the host only (use a host-* table)")
        if not isinstance(meta.get("threads"), int) or meta.get("runtime") not in RUNNERS:
            raise NseError(f"table {table.name} does not say which runtime/threads it was measured with")
        kw = {"probe": ProbeSettings.of(meta)} | {k: v for k, v in kw.items() if v is not None}
        return cls(meta["runtime"], meta["threads"], precision=table_precision(meta),
                   kernels=table_kernels(meta) or "xnnpack", **kw)


def table_space(table: LatencyTable, space: str | None) -> SearchSpace:
    """The space to draw networks from: ``space`` if given, else the one the table was profiled for."""
    if space is None:
        spaces = table.meta.get("spaces") or []
        if len(spaces) != 1:
            raise NseError(f"table {table.name} covers spaces {spaces}; say which with --space")
        space = spaces[0]
    return load_space(space)


def sample_archs(space: SearchSpace, *, samples: int, seed: int) -> list[Arch]:
    if samples < 0:
        raise NseError(f"--samples must be >= 0, got {samples}")
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(samples)]


def measure_archs(archs: Sequence[Arch], bench: Bench, *, desc: str = "networks") -> list[dict[str, Any]]:
    """Median, p10, p90 and n of each whole network, end to end.

    The runs are split into ``bench.rounds`` rounds that visit every network in turn, so a slow spell of the
    machine (the other core's load shares L3 and memory) lands on all networks alike, not on one. With
    ``bench.probe`` the table's speed probe is re-timed every ~10 s and each round's times are put on the table's
    scale (:mod:`nse_hw.profilers.speed`); the figures are then on that scale, and each network also gets
    ``as_timed_ms`` (its median as timed), ``per_probe`` (its median in probe times) and ``probe_ratio`` (the
    probe's median time while it ran over the reference: how much slower the machine was than at the build).
    """
    runner = get_runner(bench.runtime, threads=bench.threads, kernels=bench.kernels)
    jobs = [ExportJob.for_arch(a, precision=bench.precision) for a in archs]
    lead = [ExportJob.for_key(bench.probe.key, precision=bench.precision)] if bench.probe else []
    stream = exported(lead + jobs, runtime=bench.runtime, cache=bench.cache or default_cache(),
                      convert_cpus=bench.convert_cpus, progress=bench.progress)
    per_round = -(-bench.runs // bench.rounds)
    bar = progress_bar(total=len(jobs) * bench.rounds, desc=desc, unit="net",
                       disable=None if bench.progress is None else not bench.progress)
    paths: list[Path] = []
    times: list[list[tuple[np.ndarray, float]]] = [[] for _ in jobs]  # (run times, clock) per round
    probe = None
    with bar:
        if lead:
            probe = _probe(next(stream)[1], runner, bench.probe)
        for r in range(bench.rounds):
            for i, path in enumerate(paths if r else (p for _, p in stream)):  # round 0 also exports
                if r == 0:
                    paths.append(path)
                run = partial(runner.load(path).time, warmup=bench.warmup, runs=per_round)
                times[i].append(probe.timed(run) if probe else (run(), 0.0))
                bar.update()
    as_timed = [np.concatenate([t for t, _ in ts]) for ts in times]
    if probe is None:
        return [summarize(t) for t in as_timed]
    probe.tick(force=True)
    ref = bench.probe.reference_ms
    out = []
    for ts, timed in zip(times, as_timed, strict=True):
        p = [probe.at(c) for _, c in ts]  # the probe's time at each round's middle
        per = np.concatenate([t / pc for (t, _), pc in zip(ts, p, strict=True)])
        out.append(summarize(per * ref) | {"as_timed_ms": float(np.median(timed)), "per_probe": float(np.median(per)),
                                           "probe_ratio": float(np.median(p)) / ref})
    return out


def _probe(path: Path, runner: Any, s: ProbeSettings) -> SpeedProbe:
    timer = UnitTimer(runner, s.warmup, s.runs, s.cpu_cache, Evictor() if s.cpu_cache == "evicted" else None)
    return SpeedProbe(lambda: timer.stats(path)["ms"])  # timed as the table timed it


def _layers(arch: Arch) -> str:
    return " ".join(format_layer(s.ops) for s in arch.layers)


def validate(table: LatencyTable, archs: Sequence[Arch], bench: Bench, *,
             labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Predicted (raw LUT sum and calibrated) vs measured latency of each of ``archs``, and a summary."""
    if not archs:
        raise NseError("nothing to validate: give --samples N (N >= 1) or --arch files")
    cal = table.meta.get("calibration")
    used = set(cal.get("arch_hashes", [])) if cal else set()
    if clash := [arch_hash(a) for a in archs if arch_hash(a) in used]:
        raise NseError(f"network {clash[0]} was used to fit the calibration; validate on other networks")
    preds = [predict(a, table) for a in archs]  # before measuring: a table miss fails fast
    measured = measure_archs(archs, bench, desc="validate")
    raw = np.array([p.lut_sum_ms for p in preds])
    cal_ms = np.array([calibrate(p.lut_sum_ms, table) for p in preds])
    meas = np.array([m["ms"] for m in measured])
    rows = [{"arch": arch_hash(a), "label": lab, "layers": _layers(a), "lut_sum_ms": r,
             "calibrated_ms": c if cal else None, "measured_ms": m["ms"], "p10": m["p10"], "p90": m["p90"],
             "n": m["n"], "err_pct_raw": e, "err_pct_calibrated": ec if cal else None}
            for a, lab, r, c, m, e, ec in zip(archs, labels or [""] * len(archs), raw.tolist(), cal_ms.tolist(),
                                              measured, pct_errors(raw, meas).tolist(),
                                              pct_errors(cal_ms, meas).tolist(), strict=True)]
    for row, m in zip(rows, measured, strict=True):
        row.update({k: m[k] for k in ("as_timed_ms", "probe_ratio") if k in m})
    summary = {"raw": error_summary(raw, meas), "calibrated": error_summary(cal_ms, meas) if cal else None}
    speed = None
    if bench.probe:  # the same predictions against the times as taken, for comparison
        timed = np.array([m["as_timed_ms"] for m in measured])
        summary["as_timed"] = error_summary(cal_ms if cal else raw, timed)
        speed = {"reference_ms": bench.probe.reference_ms, "key": bench.probe.key,
                 "probe_ratio": float(np.median([m["probe_ratio"] for m in measured]))}
    return {"table": str(table.path), "device": "host", "runtime": bench.runtime, "threads": bench.threads,
            "precision": bench.precision, "kernels": bench.kernels, "cpu": this_cpu(),
            "table_cpu_status": cpu_status(table.meta, this_cpu()),
            "warmup": bench.warmup, "runs": bench.runs, "rounds": bench.rounds, "tool_version": __version__,
            "created": utc_now(), "calibration": cal or None, "archs": rows,
            "speed": speed, "summary": summary}


DRIFT_WARN = 0.05  # re-timed check networks off their stored times by more than this: the machine has moved
RECHECK_NETS = 4


def recheck(table: LatencyTable, *, nets: int = RECHECK_NETS, cache: Path | None = None,
            convert_cpus: set[int] | None = None, progress: bool | None = None) -> dict[str, Any] | None:
    """Re-time the first ``nets`` of the table's stored calibration (or check) networks, with the settings they
    were measured with, and compare with their stored times: how far this machine has drifted since (a busy
    neighbour, a slower VM). None when the table stores no such networks (no calibration, or an older one
    without ``points``) or is another CPU's (then the difference is the CPU, not drift)."""
    cal = table.meta.get("calibration") or {}
    points = cal.get("points") or []
    if not points or "seed" not in cal or "space" not in cal or cpu_status(table.meta, this_cpu()) == OTHER:
        return None
    space = _calibration_space(table, cal["space"])
    archs = sample_archs(space, samples=cal["n"], seed=cal["seed"])[:nets] if space else []
    if [arch_hash(a) for a in archs] != [pt["arch"] for pt in points[:nets]]:  # the space moved: nothing to re-time
        return None
    bench = Bench.for_table(table, warmup=cal.get("warmup"), runs=cal.get("runs"), rounds=cal.get("rounds"),
                            cache=cache, convert_cpus=convert_cpus, progress=progress)
    measured = measure_archs(archs, bench, desc="recheck")
    now = [m["ms"] for m in measured]
    then = [pt["measured_ms"] for pt in points[:nets]]
    ratio = [n / t for n, t in zip(now, then, strict=True)]
    median = float(np.median(ratio))
    probe = float(np.median([m["probe_ratio"] for m in measured])) if bench.probe else None
    return {"calibrated_at": cal.get("created"), "rechecked_at": utc_now(), "then_ms": then, "now_ms": now,
            "now_over_then": ratio, "median_ratio": median, "drifted": abs(median - 1) > DRIFT_WARN,
            "probe_ratio": probe}


def _calibration_space(table: LatencyTable, name: str) -> SearchSpace | None:
    """The space the calibration drew from: one of the table's recorded spaces (a name or a YAML path) of that
    name, or the shipped space of that name; None if neither loads."""
    for ref in [*(table.meta.get("spaces") or []), name]:
        try:
            space = load_space(ref)
        except (ValueError, OSError):
            continue
        if space.name == name:
            return space
    return None


def drift_message(drift: dict[str, Any]) -> str:
    """One line on how far the machine has moved since the table's networks were measured."""
    r, m = drift["now_over_then"], drift["median_ratio"]
    head = (f"the table's {len(r)} check networks, re-timed now, take {m:.2f}x (median; {min(r):.2f}-{max(r):.2f}x) "
            f"their time at calibration ({drift['calibrated_at']})")
    if drift.get("probe_ratio") is not None:  # both times on the table's scale: what the probe did not take out
        head = (f"this machine runs at {drift['probe_ratio']:.2f}x the speed probe's time at the table's build; "
                f"on the table's scale {head}")
    if not drift["drifted"]:
        return head + ": this machine runs as it did then"
    return (head + f": this machine is {abs(m - 1) * 100:.0f}% {'slower' if m > 1 else 'faster'} than then (a busy "
            "machine or a VM whose speed moves); every error below carries that much, so rerun on a quiet machine "
            "or rebuild the table now")


def archs_digest(archs: Sequence[Arch]) -> str:
    return hashlib.sha256("\n".join(arch_hash(a) for a in archs).encode()).hexdigest()


def fit_calibration(table: LatencyTable, archs: Sequence[Arch], bench: Bench, *, seed: int,
                    space: str, form: str = "affine") -> dict[str, Any]:
    """Measure ``archs``, fit the correction and store it (with provenance) in the table's meta. ``form``:
    ``affine`` (slope and intercept), ``scale`` or ``identity`` (nothing fitted: the networks are the table's
    check, as ``profile --quick`` keeps its 4)."""
    preds = [predict(a, table).lut_sum_ms for a in archs]
    measured = [m["ms"] for m in measure_archs(archs, bench, desc="calibrate")]
    fit = fit_affine(preds, measured, form=form)
    raw = error_summary(preds, measured)
    table.meta["calibration"] = {
        "slope": fit.slope, "intercept_ms": fit.intercept_ms, "n": fit.n, "seed": seed, "space": space,
        "form": fit.form,
        "archs_sha256": archs_digest(archs), "arch_hashes": [arch_hash(a) for a in archs],
        "fit_mape": fit.fit_mape, "loo_mape": fit.loo_mape, "loo_max_abs_pct_err": fit.loo_max_abs_pct_err,
        "raw_mape": raw["mape"], "raw_bias_pct": raw["bias_pct"], "warmup": bench.warmup, "runs": bench.runs,
        "rounds": bench.rounds, "created": utc_now(), "tool_version": __version__,
        "points": [{"arch": arch_hash(a), "lut_sum_ms": p, "measured_ms": m}
                   for a, p, m in zip(archs, preds, measured, strict=True)],
    }
    table.save()
    return table.meta["calibration"]


def plot_validation(report: dict[str, Any], path: str | Path) -> Path:
    """Predicted vs measured scatter (raw and calibrated), the y = x line and the +-10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nse_hw.atomic import atomic_write

    rows = report["archs"]
    meas = np.array([r["measured_ms"] for r in rows])
    lo, hi = 0.9 * meas.min(), 1.1 * meas.max()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    line = np.linspace(lo, hi, 2)
    ax.fill_between(line, 0.9 * line, 1.1 * line, color="0.85", label="±10%")
    ax.plot(line, line, "k-", lw=0.8, label="y = x")
    s = report["summary"]
    ax.scatter(meas, [r["lut_sum_ms"] for r in rows], s=14, label=f"LUT sum (MAPE {s['raw']['mape']:.1f}%)")
    if s["calibrated"]:
        ax.scatter(meas, [r["calibrated_ms"] for r in rows], s=14, marker="x",
                   label=f"calibrated (MAPE {s['calibrated']['mape']:.1f}%)")
    ax.set(xlabel="measured (ms)", ylabel="predicted (ms)",
           title=f"{report['runtime']} {report.get('precision', 'float32')}, {report['threads']} thread(s), "
                 f"{len(rows)} networks")
    ax.legend(loc="upper left")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)
