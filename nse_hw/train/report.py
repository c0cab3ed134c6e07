"""What a training run leaves beside its checkpoints: the metrics log (JSON lines) and a training-curve PNG.

Both are rewritten whole and atomically from the history kept in the checkpoint, so after a kill -9 and a
resume they hold exactly the epochs the last checkpoint holds: no duplicated or orphaned lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nse_hw.atomic import atomic_write, atomic_write_text


def write_metrics(path: Path, history: list[dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in history))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_curve(path: Path, history: list[dict[str, Any]], *, title: str) -> Path:
    """Loss and top-1 per epoch (train and held-out) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "s-", label="held-out")
    ax_loss.set(xlabel="epoch", ylabel="loss (train: label-smoothed CE)")
    ax_acc.plot(epochs, [100 * r["train_top1"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * r["val_top1"] for r in history], "s-", label="held-out")
    ax_acc.set(xlabel="epoch", ylabel="top-1 (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
