"""A training run's directory: its fixed file names, and the checks that keep one run per directory (a new run
needs an empty one, a resume its ``last.pt`` and its unedited ``config.yaml``)."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from nse_hw.atomic import exclusive_dir, is_bookkeeping
from nse_hw.config import edited_keys
from nse_hw.errors import NseError

log = logging.getLogger(__name__)
LAST, BEST, RESULT = "last.pt", "best.pt", "result.json"
HEADER = ("arch.json", "proxy_arch.json", "config.yaml")  # written before the first epoch


def check_run_dir(out: Path, *, resume: bool) -> None:
    """Refuse to mix runs: a new run needs a directory without a run in it; a resume needs its last.pt.
    (``open_run_dir`` has refused a file in the directory's place before it took the lock.)

    A run that ended before its first checkpoint left only its header: it can be started again, not resumed.
    """
    content = [p for p in out.iterdir() if not is_bookkeeping(p)] if out.is_dir() else []
    failed_start = bool(content) and not (out / LAST).exists() and {p.name for p in content} <= set(HEADER)
    if resume:
        if failed_start:
            raise NseError(f"cannot resume: the run in {out} ended before its first epoch finished; start it "
                           f"again without --resume")
        if not (out / LAST).is_file():
            raise NseError(f"cannot resume: {out / LAST} does not exist")
        return
    if failed_start:
        log.info("%s holds a run that ended before its first checkpoint; starting it again", out)
    elif content:
        hint = f"resume it with --resume {out}" if (out / LAST).exists() else "choose another --out"
        raise NseError(f"output directory {out} exists and is not empty; {hint}")


def check_config_unedited(out: Path, config: dict[str, Any]) -> None:
    edited = edited_keys(out / "config.yaml", config)
    if edited:
        raise NseError(f"{out / 'config.yaml'} was edited since the run started ({', '.join(edited)}); --resume "
                       f"continues with the config in {LAST}: undo the edit, or start a new run with --config")


def open_run_dir(out: Path, *, resume: bool, held: ExitStack) -> None:
    """Rank 0: lock ``out`` for the rest of the run (removing debris of interrupted writes), then check it."""
    if out.exists() and not out.is_dir():
        raise NseError(f"output directory {out} is a file; choose another --out")
    if resume and not out.is_dir():
        raise NseError(f"cannot resume: no directory {out}")
    held.enter_context(exclusive_dir(out))
    check_run_dir(out, resume=resume)
