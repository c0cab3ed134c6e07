"""Checkpoints written atomically (temp file + rename) and read with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nse_hw.atomic import atomic_write
from nse_hw.errors import NseError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NseError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign files raise many kinds of errors
        raise NseError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise NseError(f"checkpoint {path} does not hold a state dict")
    return state
