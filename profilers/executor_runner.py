"""ExecuTorch's ``executor_runner`` / ``xnn_executor_runner``: the command line we run on a phone, and a parser
for what it prints (examples/portable/executor_runner/executor_runner.cpp; the XNNPACK build links the same file).

Flags (gflags): ``--model_path=PATH``, ``--num_executions=N``, ``--cpu_threads=T``. There is no warm-up flag, so
we run ``warmup + runs`` executions and drop the first ``warmup``. What it logs (ET_LOG, ``Info`` level; the
posix PAL writes these to stderr, each after a prefix like ``I 00:00:00.123456 executorch:executor_runner.cpp:612]``):

    Resetting threadpool with num threads = 1          (threadpool builds only)
    Model loaded in 1.234000 ms.
    Iteration 1 of 220: 4.567000 ms                    (one per execution)
    ...
    Model executed successfully 220 time(s) in 1005.000000 ms.

then the output tensors. A runner that prints only the total (older ones), a Release build without
``-DEXECUTORCH_ENABLE_LOGGING=ON`` (prints nothing), or one built with the android PAL (logs to logcat) cannot
be read: :class:`BenchmarkParseError`, never total/N (that would average the warm-up in silently).
"""

from __future__ import annotations

import re
import shlex

import numpy as np
from nse_hw.profilers.benchmark_model import BenchmarkParseError, BenchmarkResult, _head

RUNNER = "xnn_executor_runner"
BUILD_HINT = ("build ExecuTorch's xnn_executor_runner for Android arm64 (its examples/xnnpack build with the "
              "Android NDK toolchain, -DEXECUTORCH_BUILD_XNNPACK=ON -DEXECUTORCH_ENABLE_LOGGING=ON and the default "
              "posix PAL, so its log reaches the shell)")
STATISTIC = "median of the timed executions (the runner's first `warmup` executions dropped)"

_ITER = re.compile(r"\bIteration (\d+) of (\d+): ([0-9.]+(?:[eE][-+]?\d+)?) ms")
_DONE = re.compile(r"Model executed successfully (\d+) time\(s\) in ([0-9.]+) ms")
_LOADED = re.compile(r"Model loaded in ([0-9.]+) ms")
_THREADS = re.compile(r"Resetting threadpool with num threads = (-?\d+)")


def _refuse(why: str, text: str) -> BenchmarkParseError:
    return BenchmarkParseError(f"cannot parse {RUNNER} output ({why}); it began: {_head(text)}")


def parse_runner_output(text: str, *, warmup: int, runs: int | None = None) -> BenchmarkResult:
    """Statistics of the executions after the first ``warmup`` (ms; the entry statistic is their median).

    ``runs``: if given, the run must have made exactly ``warmup + runs`` executions. Raises
    :class:`BenchmarkParseError` (with the first lines) when the per-execution lines are missing, incomplete or
    out of order, or when there are no executions left after the warm-up.
    """
    iters = [(int(i), int(n), float(ms)) for i, n, ms in _ITER.findall(text)]
    done = _DONE.search(text)
    if not iters:
        why = ("only the total 'Model executed successfully N time(s)' line, which averages the warm-up in: use a "
               "newer runner that logs 'Iteration N of M' lines" if done else
               "no 'Iteration N of M: T ms' lines; a Release build logs nothing without "
               "-DEXECUTORCH_ENABLE_LOGGING=ON, and the android PAL logs to logcat")
        raise _refuse(why, text)
    total = iters[0][1]
    if [i for i, _, _ in iters] != list(range(1, len(iters) + 1)) or any(n != total for _, n, _ in iters):
        raise _refuse("its 'Iteration N of M' lines are out of order", text)
    if len(iters) != total or not done or int(done.group(1)) != total:
        raise _refuse(f"the run stopped after {len(iters)} of {total} executions", text)
    if runs is not None and total != warmup + runs:
        raise _refuse(f"it made {total} executions, not warmup + runs = {warmup + runs}", text)
    if total <= warmup:
        raise _refuse(f"{total} executions leave none to time after {warmup} warm-up ones", text)
    times = np.array([ms for _, _, ms in iters])
    timed = times[warmup:]
    p5, median, p95 = (float(x) for x in np.percentile(timed, [5, 50, 95]))
    loaded, threads = _LOADED.search(text), _THREADS.search(text)
    return BenchmarkResult(
        count=len(timed), avg_ms=float(timed.mean()), std_ms=float(timed.std()), min_ms=float(timed.min()),
        max_ms=float(timed.max()), first_ms=float(timed[0]), median_ms=median, p5_ms=p5, p95_ms=p95,
        warmup_avg_ms=float(times[:warmup].mean()) if warmup else None,
        init_ms=float(loaded.group(1)) if loaded else None,
        threads=int(threads.group(1)) if threads else None,
        extra={"executions": total, "total_ms": float(done.group(2))},
    )


def runner_command(binary: str, model: str, *, threads: int, warmup: int, runs: int, mask: str | None = None,
                   extra_flags: tuple[str, ...] = ()) -> str:
    """The device shell command line (every word quoted for the phone's ``sh``)."""
    words = (["taskset", mask] if mask else []) + [
        binary, f"--model_path={model}", f"--num_executions={warmup + runs}", f"--cpu_threads={threads}",
    ] + list(extra_flags)
    return " ".join(shlex.quote(w) for w in words)
