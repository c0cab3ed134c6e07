"""Build a host latency table: every key a search space can need, exported, timed, saved after each entry.

Resumable: keys already in the table are skipped, and the table is written atomically after every entry, so a
kill loses at most the entry being timed. Exports are cached (see :mod:`nse_hw.profilers.units`), so a resumed run
re-converts nothing. Each save merges with the file under its lock (:meth:`LatencyTable.save`): entries another
command added meanwhile (``tables import``, a second profile) are kept, and this run's copy picks them up.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nse_hw.profilers.host import Runner, get_runner, host_description
from nse_hw.profilers.pipeline import exported
from nse_hw.profilers.speed import PROBE_KEY, SpeedProbe, rereference, scaled, speed_meta
from nse_hw.profilers.timing import CPU_CACHE_MODES, NULL_KEY, Evictor, UnitTimer
from nse_hw.profilers.units import (
    EXPORTER,
    INT8_CALIBRATION,
    UNIT_SEED,
    ExportJob,
    check_job_runtime,
    default_cache,
    exporter_version,
)

from nse_hw import __version__
from nse_hw.atomic import atomic_write_text, check_writable_dir
from nse_hw.errors import NseError
from nse_hw.hostcpu import OTHER, cpu_status, describe, table_cpu
from nse_hw.latency import LatencyTable, arch_components, load_table, space_keys
from nse_hw.latency.lock import table_lock
from nse_hw.latency.table import table_kernels, utc_now
from nse_hw.progress import progress_bar
from nse_hw.space import Arch, SearchSpace

log = logging.getLogger(__name__)
BUSY_LOAD = 1.5  # 1-min load average above which other jobs share the timed core's caches and memory

# Provenance that must agree before new entries may join an existing table.
_MUST_MATCH = ("device", "runtime", "runtime_version", "threads", "dtype", "batch", "warmup", "runs", "cpu_cache",
               "kernels")


@dataclass(frozen=True)
class ProfileResult:
    path: Path
    measured: int
    skipped: int
    wall_s: float


def new_meta(runner: Runner, *, warmup: int, runs: int, cpu_cache: str, evictor: Evictor | None,
             precision: str = "float32") -> dict[str, Any]:
    return {
        "device": "host", "runtime": runner.name, "runtime_version": runner.version, "threads": runner.threads,
        "kernels": runner.kernels,
        "dtype": precision, "precision": precision, "batch": 1, "statistic": "median", "warmup": warmup, "runs": runs,
        "cpu_cache": cpu_cache, "evict_bytes": evictor.nbytes if evictor else None,
        "entries_are": "model time minus invoke_overhead.ms (one invocation of a trivial model, timed alike)",
        "created": utc_now(), "host": host_description(), "tool_version": __version__,
        "exporter": {"package": EXPORTER[runner.name], "version": exporter_version(runner.name)},
        "unit_seed": UNIT_SEED, "spaces": [],
        **({"quantisation": INT8_RECIPE[runner.name]} if precision == "int8" else {}),
    }


_CALIBRATION = f"{INT8_CALIBRATION} seeded N(0,1) inputs per unit"
INT8_RECIPE = {  # what the int8 exporters (nse_hw.export.tflite / .pte) do, recorded per table
    "litert": {"quantiser": "litert-torch PT2EQuantizer (torchao prepare_pt2e/convert_pt2e), as export --int8",
               "scheme": "symmetric", "weights": "int8 per-channel", "activations": "int8",
               "io": "int8 input/output tensors", "calibration": _CALIBRATION},
    "executorch": {"quantiser": "ExecuTorch XNNPACKQuantizer (torchao prepare_pt2e/convert_pt2e), as export "
                   "--format pte --int8", "scheme": "symmetric", "weights": "int8 per-channel",
                   "activations": "int8", "io": "float32 input/output, quantised inside the delegate",
                   "calibration": _CALIBRATION},
}


def open_table(path: Path, meta: dict[str, Any]) -> LatencyTable:
    """The table at ``path`` if it exists and was measured the same way, else a new one (not yet written)."""
    if not path.exists():
        return LatencyTable(meta, {}, path)
    table = load_table(path)
    have = {**table.meta, "kernels": table_kernels(table.meta)}
    clash = [f"{k}={have.get(k)!r} (asked {meta[k]!r})" for k in _MUST_MATCH if have.get(k) != meta[k]]
    if clash:
        raise NseError(f"table {path} was measured differently: {', '.join(clash)}; use another --out")
    here = meta["host"]["cpu_fingerprint"]
    if cpu_status(table.meta, here) == OTHER:  # entries of two CPUs in one table would be neither's
        raise NseError(f"table {path} was measured on another CPU ({describe(table_cpu(table.meta) or {})}), not "
                       f"this {describe(here)}; use another --out (or omit it: the default names this CPU's table)")
    return table


def check_writable(path: Path) -> None:
    """Fail before any long work if ``path`` cannot be written."""
    if path.is_dir():
        raise NseError(f"output {path} is a directory; give a .json file path")
    check_writable_dir(path.parent)
    with table_lock(path):  # the lock sweeps probes that a killed run left; another run's is never swept
        probe = path.parent / f".{path.name}.probe"
        atomic_write_text(probe, "")
        probe.unlink()


def _net_of(stats: dict[str, float], overhead_ms: float) -> dict[str, Any]:
    """A block's own cost: its model's time minus one invocation's; clamped (and flagged) at 0 when not above it."""
    out: dict[str, Any] = {k: round(max(stats[k] - overhead_ms, 0.0), 6) for k in ("ms", "p10", "p90")}
    if stats["ms"] <= overhead_ms:  # no cost of its own left to measure
        out["clamped"] = True
    return out | {"n": stats["n"]}


def _load_record(before: dict[str, float] | None, loads: list[float]) -> dict[str, float]:
    """The 1-min load averages seen while entries were timed (max over every run that filled the table)."""
    peak = max(max(loads), (before or {}).get("max", 0.0))
    return {"max": round(peak, 2), "median_this_run": round(float(sorted(loads)[len(loads) // 2]), 2)}


class _Scale:
    """Entries timed since the probe's last sample wait here until its next one brackets them, then go into the
    table on the probe's scale (reference: ``meta.speed.reference_ms``, this run's first probe time for a new
    table until :meth:`finish` puts every scaled entry on the median of all the table's probe times)."""

    def __init__(self, table: LatencyTable, probe: SpeedProbe) -> None:
        self.table, self.probe = table, probe
        self.pending: list[tuple[str, dict[str, float], float]] = []
        probe.tick(force=True)
        self.reference = speed_meta(table.meta)["reference_ms"] or probe.samples[0][1]

    @property
    def speed(self) -> dict[str, Any]:
        return speed_meta(self.table.meta)  # looked up each time: a save replaces the table's meta with a merge

    def add(self, name: str, stats: dict[str, float], clock: float) -> None:
        """An entry timed at ``clock`` (after :meth:`SpeedProbe.timed` ticked the probe if due)."""
        if self.pending and self.pending[0][2] < self.probe.samples[-1][0]:  # bracketed by the newest sample
            self._flush()
        self.pending.append((name, stats, clock))

    def _flush(self) -> None:
        for name, stats, clock in self.pending:
            p = self.probe.at(clock)
            self.table.set(name, source="measured", probe_ms=round(p, 6),
                           **_net_of(scaled(stats, probe_ms=p, reference_ms=self.reference),
                                     self.table.meta["invoke_overhead"]["ms"]))
        self.pending.clear()
        self.speed["reference_ms"] = self.reference
        self.table.save()

    def finish(self) -> None:
        self.probe.tick(force=True)
        self._flush()
        self.speed["runs"].append({"created": utc_now(), **self.probe.record()})
        new = statistics.median(p for r in self.speed["runs"] for p in r["probe_ms"])
        moved = rereference(self.table.entries, old_ms=self.reference, new_ms=new)
        self.speed["reference_ms"] = round(new, 6)
        log.info("speed probe: %d timings, %.3f-%.3f ms; %d entries on the reference %.3f ms",
                 len(self.probe.samples), min(p for _, p in self.probe.samples),
                 max(p for _, p in self.probe.samples), moved, new)


def profile_host(space: SearchSpace | None, *, runtime: str, out: Path, threads: int = 1, warmup: int = 20,
                 runs: int = 200, cpu_cache: str = "evicted", cache: Path | None = None,
                 convert_cpus: set[int] | None = None, progress: bool | None = None,
                 space_ref: str | None = None, precision: str = "float32",
                 archs: tuple[tuple[str, Arch], ...] = (), kernels: str = "xnnpack",
                 only_keys: list[str] | None = None, prefetch: Sequence[ExportJob] = (),
                 speed_probe: bool = True) -> ProfileResult:
    """Measure every key of ``space`` and of ``archs`` ((reference, arch) pairs: a network of any shape, e.g.
    MobileNetV2 at 160 px) missing from the table at ``out`` (created if absent) on this host.

    ``cpu_cache``: ``evicted`` times each block as inside a network (see :mod:`nse_hw.profilers.timing`), ``warm``
    back to back. ``space_ref`` (default: the space's name) is what meta.spaces records: a name or YAML path.
    ``precision``: ``int8`` quantises every unit as ``nse-hw export --int8`` does (LiteRT only).
    ``kernels``: LiteRT's op resolver path (``xnnpack`` or ``builtin``). ``only_keys``: measure just these keys
    of the space (``profile --quick`` measures a subset and predicts the rest). ``prefetch``: models to export
    (not time) in the same stream after the keys, so a whole-network step that follows finds them converted by
    cores that would otherwise wait (``--quick``'s calibration networks). ``speed_probe``: re-time a fixed unit
    every ~10 s and put every entry on one scale (:mod:`nse_hw.profilers.speed`; entries are then saved every
    ~10 s, so a kill loses those since the last save); ignored when extending a table begun without it.
    """
    if warmup < 0 or runs < 1:
        raise NseError(f"need --warmup >= 0 and --runs >= 1, got {warmup} and {runs}")
    if cpu_cache not in CPU_CACHE_MODES:
        raise NseError(f"--cpu-cache must be one of {', '.join(CPU_CACHE_MODES)}, got {cpu_cache!r}")
    runner = get_runner(runtime, threads=threads, kernels=kernels)
    check_job_runtime(ExportJob.for_key(NULL_KEY, precision=precision), runtime)
    check_writable(out)
    evictor = Evictor() if cpu_cache == "evicted" else None
    table = open_table(out, new_meta(runner, warmup=warmup, runs=runs, cpu_cache=cpu_cache, evictor=evictor,
                                     precision=precision))
    if space is None and not archs:
        raise NseError("nothing to profile: give a space or an arch")
    keys = space_keys(space) if space is not None else []
    if only_keys is not None:
        keys = [k for k in keys if k in set(only_keys)]
    if space is not None and (ref := space_ref or space.name) not in table.meta.setdefault("spaces", []):
        table.meta["spaces"].append(ref)
    for ref, arch in archs:
        keys += [k for c in arch_components(arch) for k, _ in c.keys]
        if ref not in table.meta.setdefault("archs", []):
            table.meta["archs"].append(ref)
    keys = list(dict.fromkeys(keys))
    todo = [k for k in keys if k not in table]
    skipped = len(keys) - len(todo)
    what = space.name if space is not None else ", ".join(r for r, _ in archs)
    log.info("%s: %d keys to measure, %d already in %s", what, len(todo), skipped, out)
    start, loads = time.perf_counter(), [os.getloadavg()[0]]
    if todo and loads[0] > BUSY_LOAD:
        log.warning("load average %.1f: other jobs share this CPU's caches and memory, and memory-bound entries "
                    "time up to ~30%% slow under load (benchmarks/latency/RESULTS-latency.md); profile on a quiet "
                    "machine",
                    loads[0])
    timer = UnitTimer(runner, warmup, runs, cpu_cache, evictor)
    null = [] if "invoke_overhead" in table.meta else [ExportJob.for_key(NULL_KEY, precision=precision)]  # kept
    # a table begun without the probe goes on without it: its entries stay on one scale (as timed)
    probed = speed_probe and bool(todo) and ("speed" in table.meta or not table.entries)
    lead = null + ([ExportJob.for_key(PROBE_KEY, precision=precision)] if probed else [])
    jobs = lead + [ExportJob.for_key(k, precision=precision) for k in todo]
    extra = [j for j in dict.fromkeys(prefetch) if j not in set(jobs)]
    stream = exported(jobs + extra, runtime=runtime, cache=cache or default_cache(), convert_cpus=convert_cpus,
                      progress=progress)
    bar = progress_bar(stream, total=len(jobs) + len(extra), desc=f"profile {runtime}", unit="model",
                       disable=None if progress is None else not progress)
    scale = None
    for i, (job, path) in enumerate(bar):
        if i >= len(jobs):  # a prefetched model: converted, not timed
            continue
        if null and i == 0:
            table.meta["invoke_overhead"] = {"key": NULL_KEY, **timer.stats(path)}
        elif i < len(lead):
            scale = _Scale(table, SpeedProbe(lambda p=path: timer.stats(p)["ms"]))
        else:
            stats, clock = scale.probe.timed(lambda p=path: timer.stats(p)) if scale else (timer.stats(path), 0.0)
            loads.append(os.getloadavg()[0])
            table.meta["load_avg_1min"] = _load_record(table.meta.get("load_avg_1min"), loads)
            table.meta["updated"] = utc_now()
            if scale is None:
                table.set(job.name, source="measured", **_net_of(stats, table.meta["invoke_overhead"]["ms"]))
                table.save()
            else:
                scale.add(job.name, stats, clock)
    if scale is not None:
        scale.finish()
    table.save()  # also when nothing was missing: records the space in meta
    return ProfileResult(out, len(todo), skipped, time.perf_counter() - start)
