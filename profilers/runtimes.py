"""This host's runtimes behind the export library's :class:`~nse_hw.export.ship.HostRuntimes` protocol (export
never imports the profilers): what `nse-hw export` and :func:`nse_hw.export` hand to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nse_hw.export.ship import RUNTIME_FORMAT


class HostAdapter:
    """nse_hw.profilers.host as HostRuntimes: load a model file into a session, time it, describe the host."""

    def load(self, path: Path, runtime: str, *, threads: int, kernels: str = "xnnpack") -> Any:
        from nse_hw.profilers.host import get_runner

        return get_runner(runtime, threads=threads, kernels=kernels).load(path)

    def time(self, session: Any, *, warmup: int, runs: int) -> dict[str, Any]:
        from nse_hw.profilers.host import summarize

        return summarize(session.time(warmup=warmup, runs=runs))

    def describe(self) -> dict[str, Any]:
        from nse_hw.profilers.host import get_runner, host_description

        from nse_hw.export.pte import executorch_available

        versions = {rt: get_runner(rt, threads=1).version for rt in RUNTIME_FORMAT
                    if rt != "executorch" or executorch_available()}
        return {**host_description(), "runtime_versions": versions}
