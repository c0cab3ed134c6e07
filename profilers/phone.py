"""Profile blocks on an Android phone: push each ``.tflite`` and time it with LiteRT's ``benchmark_model``, or
(``runtime="executorch"``) each ``.pte`` lowered to XNNPACK with ExecuTorch's ``xnn_executor_runner``.

A device description (``configs/devices/<name>.yaml``) says how: the ``taskset`` mask of the big cores, threads,
warm-up and timed runs, where the binaries live on the phone, and extra ``benchmark_model`` flags. Entries land
in ``latency_tables/<phone-model>-<tflite|executorch>[-int8].json`` with provenance (phone model, Android
version, CPU governors and frequencies, the binary's version if it prints one, threads, mask). Resumable:
measured keys are skipped, and the table is saved atomically after every entry, so a dropped connection loses at
most the entry in flight.
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from nse_hw.profilers.adb import Adb, CommandFailed, ConnectionLost, connect, describe_phone, slug
from nse_hw.profilers.benchmark_model import BenchmarkResult, benchmark_command, parse_benchmark_output
from nse_hw.profilers.executor_runner import BUILD_HINT, RUNNER, STATISTIC, parse_runner_output, runner_command

from nse_hw import __version__
from nse_hw.errors import NseError
from nse_hw.latency import LatencyTable, load_table, space_keys
from nse_hw.latency.table import check_precision, table_precision, utc_now
from nse_hw.paths import CONFIGS, user_tables
from nse_hw.progress import progress_bar
from nse_hw.space import SearchSpace

log = logging.getLogger(__name__)
DEVICES = CONFIGS / "devices"
ExportFn = Callable[[list[str]], Iterable[tuple[str, Path]]]  # keys -> (key, local file), in order, lazily
_MUST_MATCH = ("device", "runtime", "threads", "warmup", "runs")
# runtime -> (the DeviceConfig field with its binary's phone path, the binary, how to get one, the file suffix)
BINARIES = {
    "tflite": ("benchmark_binary", "benchmark_model", "download or build LiteRT's benchmark_model for Android "
               "(arm64)", ".tflite"),
    "executorch": ("executorch_runner", RUNNER, BUILD_HINT, ".pte"),
}
PHONE_RUNTIMES = tuple(BINARIES)


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    threads: int = 1
    warmup: int = 20
    runs: int = 200
    taskset: str | None = None  # hex CPU mask, e.g. "c" = cpu2+cpu3
    benchmark_binary: str = "/data/local/tmp/benchmark_model"
    executorch_runner: str = "/data/local/tmp/xnn_executor_runner"
    remote_dir: str = "/data/local/tmp/nse_hw"
    extra_flags: tuple[str, ...] = ()
    runtime: str = "tflite"
    description: str = ""

    def __post_init__(self) -> None:
        if self.threads < 1 or self.warmup < 0 or self.runs < 1:
            raise NseError(f"device {self.name}: need threads >= 1, warmup >= 0, runs >= 1")
        if self.taskset is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", self.taskset):
            raise NseError(f"device {self.name}: taskset must be a hex CPU mask like 'c' or 'f0', "
                           f"got {self.taskset!r}")
        for p in (self.benchmark_binary, self.executorch_runner, self.remote_dir):
            if not p.startswith("/"):
                raise NseError(f"device {self.name}: phone paths must be absolute, got {p!r}")
        if self.runtime not in BINARIES:
            raise NseError(f"device {self.name}: runtime must be {' or '.join(BINARIES)}, got {self.runtime!r}")


def available_devices() -> list[str]:
    return sorted(p.stem for p in DEVICES.glob("*.yaml"))


def load_device_config(name_or_path: str | Path) -> DeviceConfig:
    """``configs/devices/NAME.yaml`` or a YAML path; unknown fields and bad values are one-line errors."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = DEVICES / f"{name_or_path}.yaml"
        if not path.exists():
            raise NseError(f"unknown device {str(name_or_path)!r}; known: {', '.join(available_devices())} "
                           f"(or give a YAML path)")
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise NseError(f"cannot read device file {path}: {exc}") from None
    if not isinstance(cfg, dict):
        raise NseError(f"device file {path} must hold a mapping")
    cfg.setdefault("name", path.stem)
    if "taskset" in cfg and cfg["taskset"] is not None:
        cfg["taskset"] = str(cfg["taskset"])
    cfg["extra_flags"] = tuple(cfg.get("extra_flags") or ())
    try:
        return DeviceConfig(**cfg)
    except TypeError as exc:
        raise NseError(f"device file {path}: {exc}") from None


def _remote_name(key: str, runtime: str = "tflite") -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key) + BINARIES[runtime][3]


def ensure_binary(dev: Adb, cfg: DeviceConfig, local: Path | None) -> str:
    """Push ``local`` (if given) to the phone as ``cfg.runtime``'s binary (benchmark_model or the ExecuTorch
    runner); check it is there and executable. Returns its path."""
    attr, what, how, _ = BINARIES[cfg.runtime]
    remote = getattr(cfg, attr)
    if local is not None:
        dev.shell(f"mkdir -p {shlex.quote(str(Path(remote).parent))}")
        dev.push(local, remote)
        dev.shell(f"chmod 755 {shlex.quote(remote)}")
    if not dev.exists(remote, executable=True):
        raise NseError(f"no executable {what} at {remote} on {dev.serial}; {how} and pass --benchmark-binary "
                       "PATH to push it")
    return remote


def run_benchmark(dev: Adb, binary: str, graph: str, cfg: DeviceConfig, *, op_profiling: bool = False
                  ) -> BenchmarkResult:
    """Run ``cfg.runtime``'s binary on ``graph`` (a phone path) under the device's taskset mask; parse what it
    prints. The ExecuTorch runner gets no ``extra_flags`` (they are benchmark_model's) and no op profiling."""
    if cfg.runtime == "executorch":
        cmd = runner_command(binary, graph, threads=cfg.threads, warmup=cfg.warmup, runs=cfg.runs, mask=cfg.taskset)
    else:
        cmd = benchmark_command(binary, graph, threads=cfg.threads, warmup=cfg.warmup, runs=cfg.runs,
                                mask=cfg.taskset, op_profiling=op_profiling, extra_flags=cfg.extra_flags)
    try:
        out = dev.shell(f"{cmd} 2>&1")
    except CommandFailed as exc:
        lines = " | ".join(ln.strip() for ln in exc.output.splitlines() if ln.strip())[-300:]
        raise NseError(f"{BINARIES[cfg.runtime][1]} failed on {Path(graph).name}: {lines or exc}") from None
    if cfg.runtime == "executorch":
        return parse_runner_output(out, warmup=cfg.warmup, runs=cfg.runs)
    return parse_benchmark_output(out)


def new_meta(cfg: DeviceConfig, phone: dict[str, Any], binary: str, *, precision: str = "float32"
             ) -> dict[str, Any]:
    meta = {
        "device": slug(phone["model"]), "runtime": cfg.runtime, "runtime_version": "unknown", "threads": cfg.threads,
        "dtype": precision, "precision": precision, "batch": 1,
        "statistic": STATISTIC if cfg.runtime == "executorch" else
        "median where benchmark_model prints one, else mean (each entry's 'stat')",
        "warmup": cfg.warmup, "runs": cfg.runs,
        "created": utc_now(), "tool_version": __version__,
        "phone": {**phone, "taskset": cfg.taskset}, "device_config": asdict(cfg), "benchmark_binary": binary,
        "spaces": [],
    }
    if cfg.runtime == "executorch":  # the runner must read .pte files of this exporter's version
        meta["exporter"] = {"package": "executorch", "version": _installed("executorch")}
    return meta


def _installed(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def open_phone_table(path: Path, meta: dict[str, Any]) -> LatencyTable:
    """The table at ``path`` if it was measured the same way (same phone model, threads, runs...), else new."""
    if not path.exists():
        return LatencyTable(meta, {}, path)
    table = load_table(path)
    clash = [f"{k}={table.meta.get(k)!r} (now {meta[k]!r})" for k in _MUST_MATCH if table.meta.get(k) != meta[k]]
    old_mask = table.meta.get("phone", {}).get("taskset")
    if old_mask != meta["phone"]["taskset"]:
        clash.append(f"taskset={old_mask!r} (now {meta['phone']['taskset']!r})")
    if table_precision(table.meta) != meta["precision"]:
        clash.append(f"precision={table_precision(table.meta)!r} (now {meta['precision']!r})")
    if clash:
        raise NseError(f"table {path} was measured differently: {', '.join(clash)}; use another --out")
    return table


@dataclass
class PhoneProfile:
    path: Path
    measured: list[str] = field(default_factory=list)
    skipped: int = 0
    wall_s: float = 0.0


def measure_models(dev: Adb, models: Iterable[tuple[str, Path]], *, cfg: DeviceConfig, table: LatencyTable,
                   binary: str, total: int | None = None, progress: bool | None = None) -> list[str]:
    """Push, time and record each ``(key, local file)``; keys already measured are skipped.

    The table is saved after every entry. A lost connection raises :class:`ConnectionLost` naming how many
    entries were saved.
    """
    done: list[str] = []
    dev.shell(f"mkdir -p {shlex.quote(cfg.remote_dir)}")
    bar = progress_bar(models, total=total, desc=f"profile {table.meta.get('device')}", unit="key",
                       disable=None if progress is None else not progress)
    try:
        for key, local in bar:
            if table.entries.get(key, {}).get("source") == "measured":
                continue
            _record(table, key, _bench_pushed(dev, binary, local, _remote_name(key, cfg.runtime), cfg))
            done.append(key)
    except ConnectionLost as exc:
        raise ConnectionLost(f"{exc}; {len(done)} new entries are saved in {table.path} — reconnect and run "
                             "the same command again to resume") from None
    return done


def _bench_pushed(dev: Adb, binary: str, local: Path, name: str, cfg: DeviceConfig, *,
                  op_profiling: bool = False) -> BenchmarkResult:
    """Push ``local`` as ``name`` into the device's work folder, benchmark it there, remove it."""
    remote = f"{cfg.remote_dir}/{name}"
    dev.push(local, remote)
    res = run_benchmark(dev, binary, remote, cfg, op_profiling=op_profiling)
    dev.shell(f"rm -f {shlex.quote(remote)}", check=False)
    return res


def _record(table: LatencyTable, key: str, res: BenchmarkResult) -> None:
    if res.threads is not None and res.threads != table.meta.get("threads"):
        raise NseError(f"{table.meta.get('benchmark_binary')} ran {key} with {res.threads} threads, not "
                       f"{table.meta.get('threads')}")
    if res.version and table.meta.get("runtime_version") in ("unknown", None):
        table.meta["runtime_version"] = res.version
    table.set(key, ms=res.ms, source="measured", **res.entry_stats())
    table.meta["updated"] = utc_now()
    table.save()


def _exports(runtime: str, cache: Path | None, convert_cpus: set[int] | None, precision: str) -> ExportFn:
    def export(keys: list[str]) -> Iterator[tuple[str, Path]]:
        from nse_hw.profilers.pipeline import exported
        from nse_hw.profilers.units import ExportJob, default_cache

        for job, path in exported([ExportJob.for_key(k, precision=precision) for k in keys], runtime=runtime,
                                  cache=cache or default_cache(), convert_cpus=convert_cpus):
            yield job.name, path
    return export


def litert_exports(*, cache: Path | None = None, convert_cpus: set[int] | None = None,
                   precision: str = "float32") -> ExportFn:
    """The default export: profilers.units/pipeline (the host profiler's cached .tflite exports, NHWC; int8
    units quantised as ``nse-hw export --int8`` does)."""
    return _exports("litert", cache, convert_cpus, precision)


def executorch_exports(*, cache: Path | None = None, convert_cpus: set[int] | None = None,
                       precision: str = "float32") -> ExportFn:
    """The host profiler's cached ``.pte`` exports, lowered to XNNPACK (int8: XNNPACKQuantizer); one line naming
    how to install ExecuTorch, here and now, when it is missing."""
    from nse_hw.export.pte import require_executorch

    require_executorch()
    return _exports("executorch", cache, convert_cpus, precision)


def phone_exports(runtime: str, **kw: Any) -> ExportFn:
    """The default export for a phone runtime (``tflite`` or ``executorch``)."""
    return executorch_exports(**kw) if runtime == "executorch" else litert_exports(**kw)


def profile_phone(space: SearchSpace, *, device_cfg: DeviceConfig, serial: str | None = None,
                  out: Path | None = None, benchmark_binary: Path | None = None, export_fn: ExportFn | None = None,
                  adb: str | None = None, progress: bool | None = None, precision: str = "float32",
                  runtime: str | None = None) -> PhoneProfile:
    """Measure every key of ``space`` missing from the phone's table (``latency_tables/<model>-<runtime>[-int8]
    .json``); threads and the big-core mask come from the device file. ``runtime``: ``tflite`` (LiteRT's
    benchmark_model) or ``executorch`` (``xnn_executor_runner``); default: the device file's (tflite).
    ``export_fn`` must export in ``precision`` for that runtime (.tflite / .pte)."""
    start = time.perf_counter()
    check_precision(precision)
    cfg = replace(device_cfg, runtime=runtime) if runtime else device_cfg
    export_fn = export_fn or phone_exports(cfg.runtime, precision=precision)  # ExecuTorch missing: fail here
    dev = connect(serial=serial, adb=adb)
    binary = ensure_binary(dev, cfg, benchmark_binary)
    meta = new_meta(cfg, describe_phone(dev), binary, precision=precision)
    tail = "" if precision == "float32" else f"-{precision}"
    out = Path(out) if out else user_tables() / f"{meta['device']}-{cfg.runtime}{tail}.json"
    table = open_phone_table(out, meta)
    if space.name not in table.meta.setdefault("spaces", []):
        table.meta["spaces"].append(space.name)
    keys = space_keys(space)
    todo = [k for k in keys if table.entries.get(k, {}).get("source") != "measured"]
    log.info("%s on %s: %d keys to measure, %d already measured in %s", space.name, dev.serial, len(todo),
             len(keys) - len(todo), out)
    table.save()
    stream = export_fn(todo) if todo else []
    done = measure_models(dev, stream, cfg=cfg, table=table, binary=binary, total=len(todo),
                          progress=progress)
    return PhoneProfile(out, done, len(keys) - len(todo), time.perf_counter() - start)


def profile_model(tflite: Path, *, device_cfg: DeviceConfig, serial: str | None = None,
                  benchmark_binary: Path | None = None, adb: str | None = None) -> BenchmarkResult:
    """Time a whole ``.tflite`` on the phone with per-op profiling (``result.nodes``: the Run Order table)."""
    device_cfg = replace(device_cfg, runtime="tflite")
    dev = connect(serial=serial, adb=adb)
    binary = ensure_binary(dev, device_cfg, benchmark_binary)
    dev.shell(f"mkdir -p {shlex.quote(device_cfg.remote_dir)}")
    return _bench_pushed(dev, binary, Path(tflite), _remote_name(Path(tflite).stem), device_cfg, op_profiling=True)
