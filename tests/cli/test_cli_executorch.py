"""ExecuTorch is an optional extra: asking for it without it installed is one line saying how to install it."""

import pytest

from nse_hw.export import pte
from tests.fixtures.cli import assert_refused, invoke


@pytest.fixture
def no_executorch(monkeypatch):
    monkeypatch.setattr(pte, "executorch_available", lambda: False)


def test_profile_executorch_without_it(no_executorch, tmp_path):
    out = tmp_path / "t.json"
    res = invoke("profile", "--device", "host", "--runtime", "executorch", "--space", "tiny", "--out", out)
    assert_refused(res, "pip install -e '.[executorch]'")
    assert not out.exists()


def test_profile_phone_executorch_without_it(no_executorch, tmp_path):
    out = tmp_path / "t.json"  # refused before adb is even looked for
    res = invoke("profile", "--device", "pixel", "--runtime", "executorch", "--space", "tiny", "--out", out)
    assert_refused(res, "pip install -e '.[executorch]'")
    assert not out.exists()


def test_export_pte_without_it(no_executorch, tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"")  # refused before the checkpoint is even read
    res = invoke("export", str(ckpt), "--format", "pte", "--out", str(tmp_path / "o"))
    assert_refused(res, "ExecuTorch is not installed")
    assert not (tmp_path / "o").exists()


def test_measure_pte_without_it(no_executorch, tmp_path):
    model = tmp_path / "m.pte"
    model.write_bytes(b"\0" * 16)
    assert_refused(invoke("measure", str(model)), "ExecuTorch is not installed")
