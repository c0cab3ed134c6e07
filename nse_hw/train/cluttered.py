"""Cluttered, translated, scale-jittered Fashion-MNIST canvases: a proxy task on which architecture matters.

In the manner of DeepMind's mnist-cluttered (Mnih et al. 2014; our own generator): one Fashion-MNIST item per
square canvas, scaled by U[scale] and placed uniformly, over U{clutter} random ``crop`` x ``crop`` fragments of
*other* items of the same split, summed and clipped to [0, 1]; the label is the item's class. A small item at an
unknown place among look-alike fragments rewards receptive field and depth where the plain 32 px task did not.

Every canvas is a pure function of (task seed, split, stream key, index) (:func:`compose`): the training stream is
unlimited (a new key draws new clutter and placements for every item), and identical under DDP sharding, resume
after kill -9 and any thread count. Held-out and test canvases use key 0: fixed sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import zoom
from torch.utils.data import Dataset

from nse_hw.config import read_yaml
from nse_hw.errors import NseError
from nse_hw.paths import CONFIGS

TASKS_DIR = CONFIGS / "tasks"
SPLIT_IDS = {"train": 0, "heldout": 1, "test": 2}
ITEM_SIDE = 28  # Fashion-MNIST
NORM_SAMPLES = 2048  # training canvases (key 0) whose pixel mean/std normalise the task


@dataclass(frozen=True)
class ClutterTask:
    """A cluttered canvas task. Sizes in pixels; ``clutter`` and ``scale`` are inclusive ranges."""

    name: str
    canvas: int
    scale: tuple[float, float] = (0.6, 1.2)
    clutter: tuple[int, int] = (4, 8)
    crop: int = 8
    test_placements: int = 3  # test canvases per test image (10000 images: 30000 canvases)
    seed: int = 0

    @property
    def max_item(self) -> int:
        return round(ITEM_SIDE * self.scale[1])

    def problems(self) -> list[str]:
        """What makes this task impossible to draw (empty when it is sound)."""
        lo, hi = self.clutter
        out = []
        if not 0 < self.scale[0] <= self.scale[1]:
            out.append(f"scale {list(self.scale)} must satisfy 0 < low <= high")
        if self.max_item > self.canvas:
            out.append(f"the largest item ({self.max_item} px at scale {self.scale[1]}) does not fit the "
                       f"{self.canvas} px canvas")
        if not 1 <= self.crop <= min(ITEM_SIDE, self.canvas):
            out.append(f"clutter crops of {self.crop} px must be 1..{min(ITEM_SIDE, self.canvas)} px")
        if not 0 <= lo <= hi:
            out.append(f"clutter count range {list(self.clutter)} must satisfy 0 <= low <= high")
        elif hi * self.crop ** 2 > self.canvas ** 2:
            out.append(f"{hi} clutter crops of {self.crop}x{self.crop} px cover more than the {self.canvas}x"
                       f"{self.canvas} px canvas: they cannot fit")
        if self.test_placements < 1:
            out.append("test_placements must be >= 1")
        return out


def load_task(source: str) -> ClutterTask | None:
    """The task named ``source`` (configs/tasks/NAME.yaml) or a task YAML file; None if ``source`` is neither."""
    path = Path(source)
    if path.suffix not in (".yaml", ".yml") or not path.is_file():
        path = TASKS_DIR / f"{source}.yaml"
        if not path.is_file():
            return None
    try:
        raw = read_yaml(path, what="task file")
    except ValueError as exc:
        raise NseError(str(exc)) from None
    if not isinstance(raw, dict) or raw.get("kind") != "cluttered-fashion-mnist":
        raise NseError(f"{path} is not a task file (expected 'kind: cluttered-fashion-mnist')")
    known = {"kind", "canvas", "scale", "clutter", "crop", "test_placements", "seed"}
    if unknown := sorted(set(raw) - known):
        raise NseError(f"{path}: unknown task key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        task = ClutterTask(path.stem if path.parent == TASKS_DIR else str(path), int(raw["canvas"]),
                           tuple(float(v) for v in raw.get("scale", (0.6, 1.2))),  # type: ignore[arg-type]
                           tuple(int(v) for v in raw.get("clutter", (4, 8))),  # type: ignore[arg-type]
                           int(raw.get("crop", 8)), int(raw.get("test_placements", 3)), int(raw.get("seed", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise NseError(f"{path}: bad task value ({exc})") from None
    if len(task.scale) != 2 or len(task.clutter) != 2:
        raise NseError(f"{path}: scale and clutter are [low, high] pairs")
    if bad := task.problems():
        raise NseError(f"task {task.name}: {bad[0]}")
    return task


def task_names() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def compose(task: ClutterTask, images: np.ndarray, split: str, key: int, index: int, item: int) -> np.ndarray:
    """Canvas ``index`` of stream ``key`` of ``split``: item ``item`` of ``images`` (N x 28 x 28 uint8) in clutter.

    float32 canvas x canvas in [0, 1]. Pure: the same arguments give the same canvas on any process.
    """
    rng = np.random.default_rng([task.seed, SPLIT_IDS[split], key, index])
    # Scalar draws in a fixed order: one call per value (a size=2 call draws the same two values, at 3x the cost),
    # so changing this code without changing the task means keeping every draw and its order (tests pin canvases).
    draw = rng.integers
    c, n, k = task.canvas, len(images), task.crop
    out = np.zeros((c, c), np.float32)
    for _ in range(int(draw(task.clutter[0], task.clutter[1] + 1)) if n > 1 else 0):
        other = images[(item + 1 + int(draw(n - 1))) % n]  # any item but this one
        y, x = int(draw(0, ITEM_SIDE - k + 1)), int(draw(0, ITEM_SIDE - k + 1))
        py, px = int(draw(0, c - k + 1)), int(draw(0, c - k + 1))
        out[py:py + k, px:px + k] += other[y:y + k, x:x + k] / np.float32(255)
    side = min(c, max(4, round(ITEM_SIDE * float(rng.uniform(*task.scale)))))
    img = zoom(images[item].astype(np.float32) / 255, side / ITEM_SIDE, order=1, grid_mode=True, mode="nearest")
    h, w = img.shape
    py, px = int(draw(0, c - h + 1)), int(draw(0, c - w + 1))
    out[py:py + h, px:px + w] += img
    return np.minimum(out, np.float32(1), out=out)  # every term is >= 0: only the top needs clipping


class CanvasSet(Dataset):
    """Canvases of one split: index i shows item ``i % len(images)``.

    A ``stream`` (the training split) draws new canvases for every key (:meth:`with_key`, which the loaders call
    with their seed); held-out and test sets are fixed (key 0).
    """

    def __init__(self, task: ClutterTask, images: np.ndarray, labels: np.ndarray, split: str, *, length: int,
                 stream: bool, mean: float = 0.0, std: float = 1.0, key: int = 0) -> None:
        self.task, self.images, self.labels, self.split = task, images, labels, split
        self.length, self.stream, self.mean, self.std, self.key = length, stream, mean, std, key

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        item = i % len(self.images)
        x = compose(self.task, self.images, self.split, self.key, i, item)
        x = torch.from_numpy((x - np.float32(self.mean)) / np.float32(self.std)).unsqueeze(0)
        return x, torch.tensor(int(self.labels[item]))

    def with_key(self, key: int) -> CanvasSet:
        """This stream drawn with ``key`` (a fixed set ignores it)."""
        if not self.stream:
            return self
        obj = CanvasSet.__new__(CanvasSet)
        obj.__dict__.update(self.__dict__, key=int(key))
        return obj


def pixel_stats(task: ClutterTask, images: np.ndarray, *, samples: int = NORM_SAMPLES) -> tuple[float, float]:
    """Mean and SD of the pixels of the first ``samples`` training canvases (key 0): the task's normalisation."""
    n = min(samples, len(images))
    px = np.stack([compose(task, images, "train", 0, i, i) for i in range(n)])
    return float(px.mean()), float(px.std())


def canvas_sets(task: ClutterTask, train: tuple[np.ndarray, np.ndarray], heldout: tuple[np.ndarray, np.ndarray],
                test: tuple[np.ndarray, np.ndarray], *, test_length: int | None = None,
                ) -> tuple[CanvasSet, CanvasSet, CanvasSet, tuple[float, float]]:
    """The three splits of ``task`` from (images, labels) pairs; the training stream yields one canvas per
    training image per pass, the held-out set one per held-out image, the test set ``test_placements`` per image
    (the first ``test_length`` of them if given: items 0, 1, ... of the first placement first)."""
    for name, (imgs, _) in (("training", train), ("held-out", heldout), ("test", test)):
        if imgs.ndim != 3 or imgs.shape[1:] != (ITEM_SIDE, ITEM_SIDE):
            raise NseError(f"task {task.name}: the {name} images are {imgs.shape[1:]}, not 28x28 Fashion-MNIST")
    mean, std = pixel_stats(task, train[0])
    n_test = len(test[0]) * task.test_placements if test_length is None else min(test_length, len(test[0]) *
                                                                                   task.test_placements)
    tr = CanvasSet(task, *train, "train", length=len(train[0]), stream=True, mean=mean, std=std)
    he = CanvasSet(task, *heldout, "heldout", length=len(heldout[0]), stream=False, mean=mean, std=std)
    te = CanvasSet(task, *test, "test", length=n_test, stream=False, mean=mean, std=std)
    return tr, he, te, (mean, std)


def describe(task: ClutterTask) -> dict[str, Any]:
    return {"task": task.name, "canvas": task.canvas, "scale": list(task.scale), "clutter": list(task.clutter),
            "crop": task.crop, "test_placements": task.test_placements, "seed": task.seed}
