"""Checkpoints written atomically (temp file + rename) and read safely: no code runs, corruption is detected.

A checkpoint is what people share, so loading one must never execute what its pickle says: ``torch.load`` runs
with ``weights_only=True`` (tensors, containers and plain Python data), plus the numpy globals that rebuild a plain
array (numpy's RNG state holds one) and torch's version string. Corruption is caught by the CRC-32 that
``torch.save`` stores for every record of its zip container: PyTorch's own reader skips that check, Python's
``zipfile`` does not.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nse_hw.atomic import atomic_write
from nse_hw.errors import NseError

# Data-only globals: numpy rebuilds an ndarray from (shape, dtype, bytes), TorchVersion is a str (nse-hw 0.1 wrote
# torch.__version__ as is); no callable of the file's choosing runs.
_PLAIN_DATA = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType,
               torch.torch_version.TorchVersion]


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def _check_integrity(path: Path) -> None:
    """Every record's CRC-32 matches (flipped bytes anywhere in the data or the directory are an error)."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise NseError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__})") \
            from None
    if bad is not None:
        raise NseError(f"checkpoint {path} is corrupt (record {bad.split('/', 1)[-1]} fails its CRC check)")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NseError(f"no checkpoint at {path}")
    _check_integrity(path)
    try:
        with torch.serialization.safe_globals(_PLAIN_DATA):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise NseError(f"checkpoint {path} holds more than tensors and plain data; refusing to load it "
                       f"(loading could run code): {_offending(exc)}") from None
    except Exception as exc:  # truncated or foreign files raise many kinds of errors
        raise NseError(f"checkpoint {path} is unreadable or truncated ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise NseError(f"checkpoint {path} does not hold a state dict")
    return state


def _offending(exc: Exception) -> str:
    """The global the restricted unpickler refused, from torch's long message (its first 'GLOBAL ...' line)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if "GLOBAL" in line or "Unsupported" in line:
            return line[:160]
    return type(exc).__name__
