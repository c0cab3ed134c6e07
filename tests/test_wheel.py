"""The wheel works anywhere: `python -m build` makes an sdist and a wheel (built from the sdist); the wheel, installed
(not editable) into a fresh venv, runs every step of the flow from a folder outside the checkout, reading the
shipped tables, spaces, presets and arch files from the installed package.

The venv sees this environment's dependencies through a .pth line naming its site-packages folders (.pth files
inside those are not processed, so the editable nse_hw stays out) and gets nse-hw only from the wheel.
"""

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "device-data"
pytestmark = pytest.mark.slow


def _run(cmd: list, *, cwd: Path, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NSE_HW_", "XDG_"))}
    env.update(OMP_NUM_THREADS="1", NSE_HW_CACHE=str(cwd / "cache"), HOME=str(cwd / "home"))
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def _dependency_dirs() -> list[str]:
    """The site-packages folders this interpreter imports from (its own, and any a .pth adds)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    dirs += [p for p in sys.path if p.endswith("site-packages")]
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, Path]:
    """(the venv's bin folder, a work folder outside the checkout) with nse-hw installed from a fresh wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=tmp)
    wheels, sdists = list(dist.glob("nse_hw-*.whl")), list(dist.glob("nse_hw-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    env = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env], cwd=tmp)
    purelib = next((env / "lib").glob("python3*/site-packages"))
    (purelib / "deps.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    _run([env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheels[0]], cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    return env / "bin", work


def _inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_the_installed_wheel_runs_every_step_outside_the_checkout(venv):
    bin_, work = venv
    env = bin_.parent
    assert not _inside(work, ROOT)
    where = json.loads(_run([bin_ / "python", "-c", "import json, nse_hw, nse_hw.profilers, nse_hw.paths as p; "
                             "print(json.dumps([nse_hw.__file__, nse_hw.profilers.__file__, str(p.CONFIGS), "
                             "str(p.TABLES)]))"], cwd=work))
    for path in where:
        assert _inside(path, env) and not _inside(path, ROOT), where

    assert "0.1.0" in _run([bin_ / "nse-hw", "--version"], cwd=work)

    pred = json.loads(_run([bin_ / "nse-hw", "latency", "predict", "mobilenetv2-1.0-224", "--device", "pixel1",
                            "--json"], cwd=work))
    assert isinstance(pred["total_ms"], float) and 20 < pred["total_ms"] < 500, pred["total_ms"]
    assert _inside(pred["table"], env) and Path(pred["table"]).name == "pixel1-tflite.json"

    _run([bin_ / "nse-hw", "search", "--preset", "smoke", "--latency", "80ms", "--threads", "1", "--out", "runs/s"],
         cwd=work)
    arch = json.loads((work / "runs/s/arch.json").read_text())
    assert arch["meta"]["predicted_ms"] <= 80.0 and arch["meta"]["space"] == "nse27-proxyless224"
    assert _inside(arch["meta"]["table"], env), arch["meta"]["table"]

    _run([bin_ / "nse-hw", "train", "runs/s", "--preset", "smoke", "--threads", "1", "--out", "runs/t"], cwd=work)
    result = json.loads((work / "runs/t/result.json").read_text())
    assert result["preset"] == "smoke" and 0.0 <= result["test_top1"] <= 1.0 and (work / "runs/t/best.pt").is_file()

    card = json.loads(_run([bin_ / "nse-hw", "export", "runs/t", "--format", "all", "--verify-images", "100",
                            "--runs", "10", "--warmup", "2", "--out", "runs/e", "--json"], cwd=work))
    assert card["verified"] is True and _inside(card["latency"]["table"], env)  # the shipped host-litert table
    for name in ("model.tflite", "model.onnx"):
        assert (work / "runs/e" / name).stat().st_size > 0 and name in card["files"]


def test_tables_the_wheel_writes_go_to_the_user_data_folder(venv):
    """`tables import` without --out writes to ~/.local/share/nse-hw/latency_tables, not into site-packages, and
    every command then finds the table by its device name."""
    bin_, work = venv
    ofa = SHARED / "ofa_note10_224_lookup_table.yaml"
    if not ofa.is_file():
        pytest.skip(f"public device data not found at {SHARED}")
    _run([bin_ / "nse-hw", "tables", "import", "--format", "ofa", ofa, "--device", "note10", "--allow-partial"],
         cwd=work)
    mine = work / "home" / ".local" / "share" / "nse-hw" / "latency_tables"
    assert (mine / "note10-tflite.json").is_file(), sorted(p.name for p in mine.parent.rglob("*"))
    listing = _run([bin_ / "nse-hw", "tables", "list"], cwd=work)
    assert f"yours: {mine}" in listing and "note10, tflite, float32 (hidden by yours)" in listing
    found = _run([bin_ / "python", "-c", "import nse_hw; print(nse_hw.load_table('note10').path)"], cwd=work)
    assert Path(found.strip()) == mine / "note10-tflite.json"
    [shipped] = (bin_.parent / "lib").rglob("note10-tflite.json")  # the installed package's, unchanged
    assert shipped.read_bytes() == (ROOT / "latency_tables" / "note10-tflite.json").read_bytes()
