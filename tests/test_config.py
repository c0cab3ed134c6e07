from dataclasses import dataclass, field

import pytest

from nse_hw.config import load_config, to_dict


@dataclass
class Inner:
    lr: float = 0.1


@dataclass
class Cfg:
    epochs: int = 3
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    sizes: list[int] = field(default_factory=list)
    limit: int | None = None


def test_yaml_then_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("epochs: 5\ninner: {lr: 1}\nsizes: [1, 2]\n")
    cfg = load_config(Cfg, tmp_path / "c.yaml", name="y", limit=None)
    assert cfg == Cfg(epochs=5, name="y", inner=Inner(lr=1.0), sizes=[1, 2])
    assert to_dict(cfg)["inner"] == {"lr": 1.0}


def test_unknown_and_mistyped_keys(tmp_path):
    (tmp_path / "c.yaml").write_text("epoch: 5\n")
    with pytest.raises(ValueError, match="unknown config key.*epoch"):
        load_config(Cfg, tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="'epochs' must be int"):
        load_config(Cfg, None, epochs="many")
    with pytest.raises(ValueError, match="inner.lr"):
        load_config(Cfg, None, inner={"lr": "fast"})
