"""Where nse-hw's shipped data lives: the configs (spaces, search and train presets, arch files, device files)
and the latency tables.

In the checkout they sit at the top (``configs/``, ``latency_tables/``); pyproject.toml installs them as the
packages ``nse_hw.configs`` and ``nse_hw.latency_tables``, so :mod:`importlib.resources` finds them the same way in
an editable install (the checkout's folders) and from a wheel (inside the installed package).
"""

from importlib.resources import files
from pathlib import Path


def _folder(package: str) -> Path:
    found = files(package)
    if not isinstance(found, Path):  # e.g. a zipped install: the code globs and opens these as real files
        raise RuntimeError(f"nse-hw's {package} is not a folder on disk ({found!r}); install nse-hw unzipped")
    return found


CONFIGS = _folder("nse_hw.configs")
SPACES = CONFIGS / "spaces"
ARCHS = CONFIGS / "archs"
TABLES = _folder("nse_hw.latency_tables")
