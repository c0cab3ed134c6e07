"""A search run directory: what it holds and how it is written (atomically, rank 0 only).

    run.json               what was asked (budget, table, device, space, kind) + the config used
    config.yaml            the config used (the same as in run.json, for reading and re-use with --config)
    checkpoint.pt          the latest checkpoint (every epoch; at each round's end)
    rounds/round-NN.json   subspaces, α probabilities, scored candidates, Pareto front, kept ops, next subspaces
    arch.json              the final arch file (DEPLOYMENT arch; `nse-hw latency predict` reads it)
    result.json            the final arch's latency, accuracy and where it came from
    search.log             the log
    plots/                 pareto.png, subspaces.png, latency.png
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nse_hw.atomic import atomic_write_json, atomic_write_text, exclusive_dir
from nse_hw.config import edited_keys, to_dict
from nse_hw.errors import NseError
from nse_hw.evolve.config import SearchConfig
from nse_hw.train.checkpoint import load_checkpoint, save_checkpoint

RUN_FORMAT = "nse-hw/search-run/1"
CKPT_FORMAT = "nse-hw/search-checkpoint/1"


@dataclass(frozen=True)
class RunInfo:
    """What a run was asked to do; with the config, everything needed to resume it."""

    budget_ms: float
    table: str
    device: str | None
    kind: str  # 'nse' or 'random'

    def to_dict(self) -> dict[str, Any]:
        return {"budget_ms": self.budget_ms, "table": self.table, "device": self.device, "kind": self.kind}


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    run_json = property(lambda self: self.path / "run.json")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    arch = property(lambda self: self.path / "arch.json")
    result = property(lambda self: self.path / "result.json")
    log = property(lambda self: self.path / "search.log")
    plots = property(lambda self: self.path / "plots")

    def round_json(self, r: int) -> Path:
        return self.path / "rounds" / f"round-{r + 1:02d}.json"

    @contextmanager
    def locked(self, *, existing: bool) -> Iterator[None]:
        """This process alone writes the run while the block runs (see ``exclusive_dir``)."""
        if existing and not self.path.is_dir():
            raise NseError(f"--resume {self.path}: no such directory")
        with exclusive_dir(self.path, subdirs=("rounds", "plots")):
            yield

    def create(self, info: RunInfo, cfg: SearchConfig) -> None:
        """Start a new run here (refuses a directory that already holds one). Call it inside ``locked``, which
        has created the directory and checked that it is writable."""
        if self.run_json.exists():
            raise NseError(f"{self.path} already holds a search run; continue it with --resume {self.path} "
                           f"or choose another --out")
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        atomic_write_json(self.run_json, {"format": RUN_FORMAT, **info.to_dict(), "config": to_dict(cfg)})

    def open(self) -> tuple[RunInfo, dict[str, Any]]:
        """An existing run's request and config dict (for --resume)."""
        if not self.path.is_dir():
            raise NseError(f"--resume {self.path}: no such directory")
        try:
            d = json.loads(self.run_json.read_text())
        except FileNotFoundError:
            raise NseError(f"{self.path} is not a search run (no run.json)") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            raise NseError(f"{self.run_json} is unreadable or corrupt") from None
        if not isinstance(d, dict) or d.get("format") != RUN_FORMAT or not isinstance(d.get("config"), dict):
            raise NseError(f"{self.path} is not a search run ({self.run_json.name} has the wrong format)")
        try:
            info = RunInfo(float(d["budget_ms"]), str(d["table"]), d.get("device"), str(d["kind"]))
        except (KeyError, TypeError, ValueError):
            raise NseError(f"{self.run_json} is missing fields") from None
        self._check_config_unedited(d["config"])
        return info, d["config"]

    def _check_config_unedited(self, config: dict[str, Any]) -> None:
        path = self.path / "config.yaml"
        edited = edited_keys(path, config)
        if edited:
            raise NseError(f"{path} was edited since the run started ({', '.join(edited)}); --resume continues "
                           f"with the run's own config: undo the edit, or start a new run with --config {path}")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        save_checkpoint({"format": CKPT_FORMAT, **state}, self.checkpoint)

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint.exists():
            return None
        ckpt = load_checkpoint(self.checkpoint)
        if ckpt.get("format") != CKPT_FORMAT:
            raise NseError(f"{self.checkpoint} is not a search checkpoint")
        return ckpt

    def write_json(self, path: Path, obj: Any) -> None:
        atomic_write_json(path, obj)

    def attach_log(self) -> logging.Handler:
        """Send the nse_hw log to search.log (appending across resumes)."""
        self.path.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        logger = logging.getLogger("nse_hw")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        return handler


def search_data(path: str) -> str | None:
    """The data source the search run directory ``path`` searched on (None when it is not one): retraining a
    search's result uses the same task."""
    run = Path(path) / "run.json"
    try:
        return json.loads(run.read_text())["config"]["data"]["source"] if run.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
