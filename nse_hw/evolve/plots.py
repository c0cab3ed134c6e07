"""Plots of a search run (matplotlib Agg): Pareto front per round, subspace evolution, final latency breakdown."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nse_hw.atomic import atomic_write  # noqa: E402
from nse_hw.latency import Prediction  # noqa: E402
from nse_hw.space import SearchSpace  # noqa: E402

COLORS = {"window": "tab:blue", "extra": "tab:gray", "previous": "tab:orange"}


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


def _rounds(run: Any, n: int) -> list[dict[str, Any]]:
    return [json.loads(run.round_json(r).read_text()) for r in range(n) if run.round_json(r).exists()]


def plot_rounds(run: Any, space: SearchSpace, budget_ms: float, n: int) -> None:
    rounds = _rounds(run, n)
    if rounds:
        plot_pareto(rounds, budget_ms, run.plots / "pareto.png")
        plot_subspaces(rounds, space, run.plots / "subspaces.png")


def plot_pareto(rounds: list[dict[str, Any]], budget_ms: float, path: Path) -> None:
    cols = min(3, len(rounds))
    rows = math.ceil(len(rounds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, rd in zip(axes.flat, rounds, strict=False):
        for kind, color in COLORS.items():
            pts = [(c["ms"], c["acc"]) for c in rd["scored"] if c["kind"] == kind]
            if pts:
                ax.scatter(*zip(*pts, strict=True), s=8, alpha=0.5, color=color,
                           label="last front, re-scored" if kind == "previous" else kind)
        front = sorted((c["ms"], c["acc"]) for c in rd["front"])
        ax.step(*zip(*front, strict=True), where="post", color="tab:red", lw=1.2, label="Pareto front")
        ax.axvline(budget_ms, color="k", ls="--", lw=0.8, label="budget")
        ax.set_title(f"round {rd['round']}")
        ax.set_xlabel("predicted latency (ms)")
        ax.set_ylabel("held-out top-1 (proxy)")
    for ax in list(axes.flat)[len(rounds):]:
        ax.axis("off")
    handles: dict[str, Any] = {}  # one legend for every round's kinds (round 1 has no last front to re-score)
    for ax in list(axes.flat)[:len(rounds)]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    axes.flat[0].legend(handles.values(), handles.keys(), fontsize=7)
    fig.tight_layout()
    fig.suptitle("Scored architectures and Pareto front per round", y=1.02)
    _save(fig, path)


def plot_subspaces(rounds: list[dict[str, Any]], space: SearchSpace, path: Path) -> None:
    """Per round a layers x pool-ops grid: in the subspace (live / pruned), kept for the next round, retired."""
    pool = [str(o) for o in space.pool]
    cols = min(3, len(rounds))
    rows = math.ceil(len(rounds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 0.22 * len(pool) * rows + 1.5), squeeze=False)
    cmap = matplotlib.colors.ListedColormap(["white", "lightgray", "tab:blue", "tab:green", "mistyrose"])
    for ax, rd in zip(axes.flat, rounds, strict=False):
        grid = [[0] * len(rd["subspaces"]["current"]) for _ in pool]
        for j, sub in enumerate(rd["subspaces"]["current"]):
            for o in rd["subspaces"].get("retired", [[]] * (j + 1))[j]:
                grid[pool.index(o)][j] = 4
            for o in sub:
                grid[pool.index(o)][j] = 1
            for o in rd["alive"][j]:
                grid[pool.index(o)][j] = 2
            for o in rd["kept"][j]:
                grid[pool.index(o)][j] = 3
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=4, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(pool)), pool, fontsize=6)
        ax.set_xlabel("searchable layer")
        ax.set_title(f"round {rd['round']}", fontsize=9)
    for ax in list(axes.flat)[len(rounds):]:
        ax.axis("off")
    handles = [matplotlib.patches.Patch(color=cmap(i), label=t) for i, t in
               enumerate(["", "pruned in round", "live at round end", "kept", "retired (budget)"]) if i]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7)
    fig.suptitle("How the subspaces evolved", y=1.01)
    _save(fig, path)


def plot_latency(pred: Prediction, budget_ms: float, path: Path) -> None:
    names = [n for n, _, _ in pred.rows]
    ms = [m for _, _, m in pred.rows]
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(names) + 1.2))
    ax.barh(range(len(names)), ms, color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms (table entries, before calibration)")
    ax.set_title(f"final arch: {pred.total_ms:.2f} ms predicted, budget {budget_ms:g} ms")
    _save(fig, path)
