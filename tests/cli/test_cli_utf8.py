"""Arguments that are not UTF-8 (issue 11): refused up front, before any work, in one line."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.cli import assert_refused, invoke


@pytest.mark.parametrize("args", [
    ("search", "--latency", "80ms", "--preset", "smoke", "--out", os.fsdecode(b"runs/\xff")),
    ("train", "configs/archs/mobilenetv2-1.0-224.json", "--out", os.fsdecode(b"r\xe9sultat")),
])
def test_non_utf8_argument_is_refused_up_front(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    res = invoke(*args)
    assert_refused(res, "is not valid UTF-8")
    assert "\\x" in res.output  # the bytes as typed
    assert list(tmp_path.iterdir()) == []  # nothing created
