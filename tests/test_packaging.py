"""pyproject.toml ships what the checkout holds, and its ranges agree with the lock.

- the package list names every package folder (nse_hw/**, and profilers/ as nse_hw.profilers);
- configs/ and latency_tables/ install as nse_hw.configs and nse_hw.latency_tables, every file in them matched
  by a package-data glob (else a wheel would silently lack it), and nse_hw.paths finds them through
  importlib.resources (here: the editable install, so the checkout's folders; tests/test_wheel.py: a wheel);
- dependencies are ranges (lower and upper bound), exact only where docs/install.md says the pin is hard;
  constraints.txt pins every one of them exactly, inside its range; setup.sh installs from it.
"""

import glob
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

from nse_hw import paths

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
DATA = {"nse_hw.configs": "configs", "nse_hw.latency_tables": "latency_tables"}
HARD_PINS = {"litert-torch"}  # docs/install.md says why


def _folders() -> set[str]:
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nse_hw").rglob("__init__.py")}
    found |= {"nse_hw." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "profilers").rglob("__init__.py")}
    return found | set(DATA)


def _requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    return reqs + [Requirement(r) for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra]


def _constraints() -> dict[str, str]:
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = [ln.split("==") for ln in lines if ln and not ln.startswith("#")]
    assert all(len(p) == 2 and re.fullmatch(r"[0-9][0-9A-Za-z.+]*", p[1]) for p in pins), "every line name==version"
    return {_norm(name): version for name, version in pins}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_folder_is_listed():
    assert set(SETUPTOOLS["packages"]) == _folders()
    assert SETUPTOOLS["package-dir"] == {"nse_hw.profilers": "profilers", **DATA}


def test_every_shipped_data_file_is_package_data():
    for package, folder in DATA.items():
        files = {p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"}
        globbed = {m for g in SETUPTOOLS["package-data"][package] for m in glob.glob(g, root_dir=ROOT / folder)}
        assert files and files <= globbed, f"{folder}/: not shipped in a wheel: {sorted(files - globbed)}"


def test_paths_resolve_through_importlib_resources_to_the_checkout():
    assert paths.CONFIGS == ROOT / "configs" and paths.TABLES == ROOT / "latency_tables"
    assert (paths.SPACES / "tiny.yaml").is_file() and (paths.TABLES / "pixel1-tflite.json").is_file()
    assert (paths.ARCHS / "mobilenetv2-1.0-224.json").is_file()


def test_dependencies_are_ranges_and_the_lock_pins_each_inside_its_range():
    lock = _constraints()
    for req in _requirements():
        ops = {s.operator for s in req.specifier}
        if req.name in HARD_PINS:
            assert ops == {"=="}, req
        else:
            assert ops & {">=", "~="} and ops & {"<", "~="}, f"{req} needs a lower and an upper bound"
        assert _norm(req.name) in lock, f"constraints.txt lacks {req.name}"
        assert req.specifier.contains(lock[_norm(req.name)]), f"constraints.txt's {req.name} is outside {req}"
    assert lock["torch"] == "2.13.0"


def test_setup_installs_the_lock_with_torch_pinned_in_the_same_command():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert re.search(r'pip install -q "torch==2\.13\.0" -c constraints\.txt -e "\.\[dev,executorch,docs,timm\]"', setup)
