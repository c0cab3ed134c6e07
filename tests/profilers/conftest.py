"""The stand-in phone for the phone-profiler tests: tests/fixtures/fake_adb importable as ``fake_phone``, and the
fixtures both runtimes' tests share (a fake phone on PATH, a two-op space)."""

import sys
from pathlib import Path

import pytest

FAKE_ADB = str(Path(__file__).resolve().parents[1] / "fixtures" / "fake_adb")
if FAKE_ADB not in sys.path:
    sys.path.insert(0, FAKE_ADB)

from fake_phone import MINI, make_phone, phone_env  # noqa: E402

from nse_hw.space import space_from_dict  # noqa: E402


@pytest.fixture
def phone(tmp_path, monkeypatch):
    root = make_phone(tmp_path / "phone")
    phone_env(monkeypatch, root)
    return root


@pytest.fixture
def space():
    return space_from_dict(MINI)
