"""The job machinery the search-quality benchmarks share: a JSON store two drivers can write at once, a lock per
unit of work, the real CLI run pinned to one core with its CPU seconds measured, and resumable retrains.

search_quality.py is the first user; its follow-ups (round_picks, rerank_effect, review_ablations, path_sampling,
proxy_spread) build on the same records.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nse_hw.atomic import LOCK_NAME, atomic_write_json, is_bookkeeping
from nse_hw.hostcpu import this_cpu, uarch

NSE_HW = str(Path(sys.executable).parent / "nse-hw")
# the layout Store writes, named for the benchmark it was first written for; a follow-up with its own passes fmt
STORE_FORMAT = "nse-hw/search-quality/1"


def die(msg: str, code: int) -> None:
    """One line on stderr and exit ``code`` (2: bad input; 1: a job failed, re-run to resume)."""
    print(f"{Path(sys.argv[0]).stem}: {msg}", file=sys.stderr)
    raise SystemExit(code)


class Store:
    """The benchmark's JSON: protocol, records (one per finished job, keyed by id) and summary. Two drivers (one
    per --budget and --cpu) may share it: every write re-reads it under a lock (``lock``) first."""

    def __init__(self, path: Path, protocol: dict[str, Any], *, lock: Path, fmt: str = STORE_FORMAT) -> None:
        self.path, self.lock = path, lock
        self.data = {"format": fmt, "protocol": protocol, "records": [], "summary": None}
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("format") != fmt or old.get("protocol") != protocol:
                die(f"{path} holds another protocol than this one; use another --out or delete it", 2)
            self.data = old

    def refresh(self) -> dict[str, Any]:
        """The data as the file holds it now (the other driver may have written it), read under the lock."""
        with open(self.lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            if self.path.exists():
                self.data = json.loads(self.path.read_text())
        return self.data

    def get(self, rid: str) -> dict[str, Any] | None:
        """The record ``rid``, read afresh."""
        return next((r for r in self.refresh()["records"] if r["id"] == rid), None)

    def write(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Re-read under the lock, apply ``change`` to the data, write atomically."""
        with open(self.lock, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            if self.path.exists():
                self.data = json.loads(self.path.read_text())
            change(self.data)
            atomic_write_json(self.path, self.data)

    def add(self, rec: dict[str, Any]) -> dict[str, Any]:
        self.write(lambda d: d["records"].append(rec))
        return rec

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.data["records"] if r["kind"] == kind]


class Job:
    """A unit of work under an flock of its own, so two drivers never run the same one."""

    def __init__(self, runs: Path, rid: str) -> None:
        self.path = runs / "locks" / rid.replace("/", "-")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> bool:
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def follow_up(ap: argparse.ArgumentParser, protocol: dict[str, Any], fmt: str, *, out: str,
              runs: str) -> tuple[argparse.Namespace, Store, Path, dict[str, Any]]:
    """A follow-up benchmark built on search_quality.py's results (round_picks, rerank_effect, review_ablations):
    its common flags, its Store and search_quality.py's JSON (``--source``)."""
    ap.add_argument("--cpu", type=int, default=0, help="core every job is pinned to (taskset -c)")
    ap.add_argument("--source", default=protocol["source"], help="search_quality.py's results JSON")
    ap.add_argument("--out", default=out)
    ap.add_argument("--runs", default=runs)
    args = ap.parse_args()
    src = Path(args.source)
    if not src.exists():
        die(f"{src} does not exist: run search_quality.py first", 2)
    run_dir = Path(args.runs)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = Store(Path(args.out), protocol, lock=run_dir / "results.lock", fmt=fmt)
    return args, store, run_dir, json.loads(src.read_text())


def record_arch(path: Path, rid: str) -> dict[str, Any]:
    """The arch JSON of record ``rid`` in a committed results file (``path``); exit 2 naming both if it is absent."""
    rec = next((r for r in json.loads(path.read_text())["records"] if r["id"] == rid), None)
    if rec is None:
        die(f"{path.name} has no record {rid}", 2)
    return rec["arch_json"]


def seed_accs(records: list[dict[str, Any]], method: str, budget: str) -> dict[int, float]:
    """Test top-1 by search seed of ``method``'s retrains with the search seed (finalist seeds left out)."""
    return {t["seed"]: t["test_top1"] for t in records if t["kind"] == "train" and t["method"] == method
            and t["budget"] == budget and t["retrain_seed"] == t["seed"]}


def seed_cpus(records: list[dict[str, Any]], method: str, budget: str) -> dict[int, float]:
    """Search CPU seconds (result.json search_s) by seed of ``method``'s searches."""
    return {s["seed"]: s["search_s"]["cpu"] for s in records if s["kind"] == "search" and s["method"] == method
            and s["budget"] == budget and s.get("search_s")}


def pct(d: dict[str, Any]) -> str:
    """A ``mean_sd``/``paired_difference`` dict in points: "mean ± SD (n N)", "-" while it has no mean."""
    return "-" if d.get("mean") is None else f"{100 * d['mean']:.2f} ± {100 * (d['sd'] or 0):.2f} (n {d['n']})"


# A CPU second is not the same work on every CPU: on ct48, a Zen 3 VM trains a stand-alone arch ~1.9x slower
# than a Zen 4 VM while it trains the supernet only ~1.1-1.2x slower (2026-12-07). Searches compared at equal CPU
# seconds therefore run on one kind of CPU: the identity fields below (ISA flags aside, so records written before
# hosts were recorded, backfilled from the session notes, compare too).
HOST_KIND = ("vendor", "model_name", "family", "model")


def same_host_kind(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Both fingerprints known and of one CPU kind (vendor, model name, family, model)."""
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in HOST_KIND)


def host_label(fp: dict[str, Any] | None) -> str:
    """"AMD EPYC family 25 model 17 (Zen 4)", for messages (``hostcpu.describe`` without the ISA flags, which
    backfilled records lack)."""
    if fp is None:
        return "unknown CPU"
    label = uarch(fp)
    return f"{fp.get('model_name')} family {fp.get('family')} model {fp.get('model')}" + (f" ({label})" if label
                                                                                           else "")


def run_cli(args: list[str], cpu: int) -> dict[str, float]:
    """Run `nse-hw ARGS` pinned to ``cpu`` with 1 thread; wall and CPU seconds (user + system) of the process."""
    cmd = ["taskset", "-c", str(cpu), NSE_HW, *args, "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    t, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        die(f"failed ({res.returncode}): {' '.join(cmd)}: {last}", 1)
    cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu_s, 2)}


def search_arch(rec: dict[str, Any]) -> Path:
    """The arch file of search record ``rec``, rewritten from the record if its run directory is gone."""
    path = Path(rec["run"]) / "arch.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, rec["arch_json"])
    return path


def retrain(store: Store, proto: dict[str, Any], arch: Path, out: Path, rid: str, cpu: int, *,
            recipe: list[str] | None = None, **fields: Any) -> dict:
    """`nse-hw train` of ``arch`` with ``recipe`` (default: --preset <the protocol's train_preset>), recorded
    under ``rid`` with ``fields``; resumes a killed retrain."""
    if rec := store.get(rid):
        return rec
    if (out / "last.pt").exists():
        args = ["train", "--resume", str(out)]
    else:
        shutil.rmtree(out, ignore_errors=True)
        args = ["train", str(arch), *(recipe or ["--preset", proto["train_preset"]]),
                "--seed", str(fields["retrain_seed"]), "--out", str(out)]
    print(f"retrain {rid} ...", flush=True)
    t = run_cli(args, cpu)
    res = json.loads((out / "result.json").read_text())
    rec = {"id": rid, "kind": "train", **fields, "arch": str(arch), "run": str(out), **t,
           "test_top1": res["test_top1"], "best_val_top1": res.get("best_val_top1"), "host": this_cpu()}
    print(f"  test top-1 {100 * rec['test_top1']:.2f}% ({t['wall_s']:.0f} s)", flush=True)
    return store.add(rec)


def supersede_seed(store: Store, runs: Path, *, budget: str, seed: int, methods: list[str], why: str) -> list[str]:
    """Set one seed's ``methods`` aside, so that the drivers run them again: their records at (``budget``,
    ``seed``), searches and retrains, move to the store's ``superseded`` list with ``why`` and the time, and their
    run directories, host files and configs to ``runs/aside/`` (a finished run left in place would be "resumed" as
    it was). The ct48 end rule (RESULTS-search, amendment 2026-12-07 10:10): a seed whose random searches still
    wait, at the end, for a kind of CPU no session has had since has its NSE and random searches re-run on the
    kind at hand. Refused while a driver holds the seed. The ids moved."""
    with Job(runs, f"seed/{budget}/{seed}") as free:
        if not free:
            die(f"a driver is running seed {seed} at {budget}: stop it first", 2)
        mine = [r for r in store.refresh()["records"]
                if (r.get("budget"), r.get("seed")) == (budget, seed) and r.get("method") in methods]
        if not mine:
            die(f"no records of {', '.join(methods)} at seed {seed}, {budget} to set aside", 2)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = runs / "aside" / f"superseded-{budget}-seed{seed}-{stamp}"
        aside.mkdir(parents=True)
        for m in methods:
            for pattern in (f"{budget}/{m}-seed{seed}", f"{budget}/{m}-seed{seed}.host.json",
                            f"{budget}/train-{m}-seed{seed}-r*", f"configs/{budget}-{m}-seed{seed}.yaml"):
                for path in sorted(runs.glob(pattern)):
                    shutil.move(path, aside / path.name)
        ids = {r["id"] for r in mine}

        def move(d: dict[str, Any]) -> None:
            d["records"] = [r for r in d["records"] if r["id"] not in ids]
            d.setdefault("superseded", []).append({"budget": budget, "seed": seed, "methods": methods, "why": why,
                                                   "at": stamp, "runs_moved_to": str(aside), "records": mine})
        store.write(move)
    return sorted(ids)


def in_flight(runs: Path, *, quiet_min: float = 30.0) -> list[str]:
    """A line per run directory under ``runs`` that a live process holds (its lock file names a running pid),
    with the minutes since it last wrote a file there. A search writes every epoch (minutes) and a round's
    scoring takes ~10 min on one core, so one quiet for ``quiet_min`` is flagged: the ct48 NSE seed 2 hung 40 min
    at a round's end before anyone looked (2026-12-07)."""
    lines = []
    for lock in sorted(runs.glob(f"*/*/{LOCK_NAME}")):
        try:
            pid = int(lock.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            continue
        run = lock.parent
        wrote = max((p.stat().st_mtime for p in run.iterdir() if not is_bookkeeping(p)), default=lock.stat().st_mtime)
        quiet = (time.time() - wrote) / 60
        flag = (f": quiet for {quiet:.0f} min, look at its stack (e.g. py-spy dump --pid {pid})"
                if quiet >= quiet_min else "")
        lines.append(f"in flight: {run.relative_to(runs)} (pid {pid}, last write {quiet:.0f} min ago){flag}")
    return lines
