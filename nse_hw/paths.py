"""Where nse-hw's shipped data lives: the configs (spaces, search and train presets, arch files, device files)
and the latency tables.

In the checkout they sit at the top (``configs/``, ``latency_tables/``); pyproject.toml installs them as the
packages ``nse_hw.configs`` and ``nse_hw.latency_tables``, so :mod:`importlib.resources` finds them the same way in
an editable install (the checkout's folders) and from a wheel (inside the installed package).

Tables nse-hw writes (``profile``, ``tables import``) go to :func:`user_tables`, never into an installed package:
``$NSE_HW_TABLES`` if set, else the checkout's ``latency_tables/`` in an editable install (new tables are committed
beside the shipped ones there), else the user data folder (``~/.local/share/nse-hw/latency_tables`` on Linux).
A table named on the command line (``--table pixel1-tflite``) is looked up in :func:`table_dirs`: the user's folder
first, then the shipped one.
"""

import os
from importlib.resources import files
from pathlib import Path

from platformdirs import user_data_path


def _folder(package: str) -> Path:
    found = files(package)
    if not isinstance(found, Path):  # e.g. a zipped install: the code globs and opens these as real files
        raise RuntimeError(f"nse-hw's {package} is not a folder on disk ({found!r}); install nse-hw unzipped")
    return found


CONFIGS = _folder("nse_hw.configs")
SPACES = CONFIGS / "spaces"
ARCHS = CONFIGS / "archs"
TABLES = _folder("nse_hw.latency_tables")


def _in_checkout() -> bool:
    """An editable install: the shipped tables are the checkout's own folder (a pyproject.toml beside it)."""
    return (TABLES.parent / "pyproject.toml").is_file()


def user_tables() -> Path:
    """The folder new tables are written to by default (see the module doc); it may not exist yet."""
    if env := os.environ.get("NSE_HW_TABLES"):
        return Path(env).expanduser()
    return TABLES if _in_checkout() else user_data_path("nse-hw") / "latency_tables"


def table_dirs() -> list[Path]:
    """Where a table is looked up by name, in order: the user's folder, then the shipped tables."""
    user = user_tables()
    return [TABLES] if user.resolve() == TABLES.resolve() else [user, TABLES]
