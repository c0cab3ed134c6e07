"""torchrun / DDP helpers: the same code runs in one process or under `torchrun --nproc_per_node=N`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from nse_hw.errors import NseError


def init_distributed() -> bool:
    """Join the process group torchrun set up (gloo on CPU, nccl on GPU); False when not under torchrun."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    if not dist.is_initialized():
        # a bounded wait: a frozen rank fails the others after this long instead of torch's 30 minutes
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=dist_timeout())
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Only rank 0 writes files and logs progress."""
    return rank() == 0


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (paths, permutations, decisions drawn on rank 0)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def on_main(fn: Callable[[], object]) -> None:
    """Run ``fn`` on rank 0 only; an NseError it raises is raised on every rank (none is left waiting)."""
    err = None
    if is_main():
        try:
            fn()
        except NseError as exc:
            err = str(exc)
    err = broadcast_object(err)
    if err:
        raise NseError(err)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


TIMEOUT_ENV = "NSE_HW_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0


def parse_timeout(raw: str | None) -> timedelta:
    """``$NSE_HW_DIST_TIMEOUT``'s value as a timeout (unset or empty: 300 s); not a positive number: ValueError."""
    if raw is None or not raw.strip():
        return timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return timedelta(seconds=seconds)


def dist_timeout() -> timedelta:
    """How long a collective waits for the other ranks before it fails (instead of torch's 30 minutes): a rank
    that froze (SIGSTOP, a hung disk) then fails the others within this bound. Data loading and rank 0's writes
    between collectives must fit in it; raise ``$NSE_HW_DIST_TIMEOUT`` for slow file systems."""
    return parse_timeout(os.environ.get(TIMEOUT_ENV))


_LOST_PEER = ("timed out", "timeout", "connection closed", "connection reset", "broken pipe", "gloo", "nccl",
              "socket", "peer")


def failure_message(exc: BaseException, *, resume_dir: str | None = None) -> str | None:
    """One line for a collective that failed because another rank stopped or died; None for any other error.

    A gloo rank that waits longer than :func:`dist_timeout` for a frozen peer, or loses the connection to a
    killed one, raises a RuntimeError whose text is many lines from deep inside the backend.
    """
    if not is_distributed() or not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    low = text.lower()
    if not isinstance(exc, dist.DistError) and not any(m in low for m in _LOST_PEER):
        return None
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    first = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first)  # the backend's source location
    what = "timed out" if "timed out" in low or "timeout" in low else "failed"
    hint = f"; continue the run with --resume {resume_dir}" if resume_dir else ""
    return (f"rank {rank()} of {world_size()}: a collective {what} (wait limit {dist_timeout().total_seconds():g} s, "
            f"${TIMEOUT_ENV}): another rank stopped or died [{first[:160]}]{hint}")
