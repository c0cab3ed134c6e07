"""nse-hw: hardware-aware Neural Search-space Evolution.

The Python API (:mod:`nse_hw.api`) is re-exported here and imported on first use, so ``import nse_hw`` (and the
CLI's start-up) loads no torch::

    import nse_hw
    report = nse_hw.predict_latency("mobilenetv2-1.0-224", device="pixel1")
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the names below are, for type checkers and the docs (mkdocstrings reads this statically)
    from nse_hw.api import (
        ExportResult,
        SearchResult,
        build_model,
        expected_latency,
        export_model,
        load_arch,
        load_table,
        predict_latency,
        search,
        train_model,
    )
    from nse_hw.errors import LatencyMiss, NseError
    from nse_hw.latency.report import LatencyReport

try:
    __version__ = version("nse-hw")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

# name -> the module that defines it (imported on first access). Training and export are train_model and
# export_model: nse_hw.train and nse_hw.export are subpackages, and an imported subpackage would shadow them.
_LAZY = {
    "build_model": "nse_hw.api", "expected_latency": "nse_hw.api", "export_model": "nse_hw.api",
    "load_arch": "nse_hw.api", "load_table": "nse_hw.api", "predict_latency": "nse_hw.api",
    "search": "nse_hw.api", "train_model": "nse_hw.api",
    "ExportResult": "nse_hw.api", "SearchResult": "nse_hw.api",
    "LatencyReport": "nse_hw.latency.report", "NseError": "nse_hw.errors", "LatencyMiss": "nse_hw.errors",
}

# A literal, so that tools reading the source (the docs' API page) see it; tests/test_api.py checks it is _LAZY's.
__all__ = ["__version__", "build_model", "expected_latency", "export_model", "load_arch", "load_table",
           "predict_latency", "search", "train_model", "ExportResult", "SearchResult", "LatencyReport", "NseError",
           "LatencyMiss"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later lookups do not come back here
        return value
    raise AttributeError(f"module 'nse_hw' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
