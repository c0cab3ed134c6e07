"""A shipped arch file can be named (``mobilenetv2-1.0-224``) wherever an arch file is taken; a path still wins."""

import json

import pytest

from nse_hw.paths import ARCHS
from nse_hw.space import load_arch
from nse_hw.space.arch import shipped_archs


def test_a_shipped_name_loads_the_shipped_file():
    assert "mobilenetv2-1.0-224" in shipped_archs()
    assert load_arch("mobilenetv2-1.0-224") == load_arch(ARCHS / "mobilenetv2-1.0-224.json")


def test_a_file_of_that_name_in_the_cwd_wins(tmp_path, monkeypatch):
    d = json.loads((ARCHS / "mnasnet-a1-224.json").read_text())
    (tmp_path / "mobilenetv2-1.0-224").write_text(json.dumps(d))
    monkeypatch.chdir(tmp_path)
    assert load_arch("mobilenetv2-1.0-224") == load_arch(ARCHS / "mnasnet-a1-224.json")


@pytest.mark.parametrize("name", ["no-such-arch", "mobilenetv2"])
def test_an_unknown_name_lists_the_shipped_ones(name):
    with pytest.raises(ValueError, match=f"no arch file '{name}', nor a shipped arch.*mobilenetv2-1.0-224"):
        load_arch(name)


def test_a_missing_json_path_is_not_taken_for_a_name(tmp_path):
    with pytest.raises(ValueError, match="cannot read arch file"):
        load_arch(tmp_path / "mobilenetv2-1.0-224.json")
