"""The package list in pyproject.toml names every package folder (nse_hw/**, and profilers/ as nse_hw.profilers)."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _folders() -> set[str]:
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nse_hw").rglob("__init__.py")}
    found |= {"nse_hw." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "profilers").rglob("__init__.py")}
    return found


def test_every_package_folder_is_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(cfg["packages"]) == _folders()
    assert cfg["package-dir"] == {"nse_hw.profilers": "profilers"}
