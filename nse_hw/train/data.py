"""Data: the embedded Fashion-MNIST proxy task, cluttered-canvas tasks built from it (:mod:`nse_hw.train.cluttered`,
``configs/tasks/``) and ImageFolder directories (train/, val/) for real data.

Every source gives three disjoint parts: ``train`` (weight steps), ``heldout`` (architecture steps and scoring,
carved from the training images with a seeded permutation) and ``test`` (the official test/val split).
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from nse_hw.errors import NseError
from nse_hw.train.cluttered import CanvasSet, ClutterTask, canvas_sets, load_task, task_names

log = logging.getLogger(__name__)
FASHION_DIR = Path(os.environ.get("NSE_HW_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                  "Ankle boot")
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class DataBundle:
    name: str
    train: Dataset
    heldout: Dataset
    test: Dataset
    channels: int
    classes: int
    resolution: int
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


IDX_UINT8, IDX_MAX_DIMS, _CHUNK = 0x08, 4, 1 << 24


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, in chunks: memory follows what the file holds, not what its header claims."""
    chunks, left = [], n
    while left > 0:
        chunk = fh.read(min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped): magic 0x0000 dtype ndim, big-endian dims, then uint8 data.

    Every malformation (empty, truncated, trailing bytes, bad gzip, not uint8, absurd dims) is a ValueError
    naming the file and what is wrong.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = _read_exact(fh, 4)
            if len(head) < 4 or head[:2] != b"\0\0":
                raise ValueError(f"IDX file {path} has no IDX header (magic 00 00 <type> <ndim>)")
            if head[2] != IDX_UINT8 or not 1 <= head[3] <= IDX_MAX_DIMS:
                raise ValueError(f"IDX file {path} holds type 0x{head[2]:02x} with {head[3]} dims; expected "
                                 f"unsigned bytes (0x08) with 1..{IDX_MAX_DIMS} dims")
            raw_dims = _read_exact(fh, 4 * head[3])
            if len(raw_dims) < 4 * head[3]:
                raise ValueError(f"IDX file {path} is truncated inside its header")
            dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
            n = math.prod(dims)
            data = _read_exact(fh, n + 1)  # one more byte: trailing data means the dims are wrong too
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a bad CRC, an EOFError
        raise ValueError(f"IDX file {path} is corrupt or unreadable: {exc}") from None
    if len(data) != n:
        raise ValueError(f"IDX file {path} declares dims {'x'.join(map(str, dims))} ({n} bytes) but holds "
                         f"{'more' if len(data) > n else len(data)} bytes of data")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _idx_file(root: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (root / name).is_file():
            return root / name
    return None


def _fashion_arrays(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, Path]:
    """The uint8 images (N x H x W) and labels of one Fashion-MNIST split, checked."""
    prefix = "train" if split == "train" else "t10k"
    img_path, lbl_path = _idx_file(root, f"{prefix}-images-idx3-ubyte"), _idx_file(root, f"{prefix}-labels-idx1-ubyte")
    if img_path is None or lbl_path is None:
        raise NseError(f"{root} has no Fashion-MNIST {prefix}-images/labels IDX files")
    try:
        images, labels = _read_idx(img_path), _read_idx(lbl_path)
    except ValueError as exc:
        raise NseError(str(exc)) from None
    _check_idx_pair(images, labels, img_path, lbl_path, classes=len(FASHION_LABELS))
    return images, labels, img_path


def _fashion_tensors(root: Path, split: str, resolution: int) -> TensorDataset:
    images, labels, img_path = _fashion_arrays(root, split)
    _check_tensor_memory(images.shape[0], resolution, img_path)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - FASHION_MEAN) / FASHION_STD
    size = images.shape[1]
    if (images.shape[1], images.shape[2]) != (resolution, resolution):  # pad (keeps pixels as they are) or resize
        pad = (resolution - size) // 2
        if images.shape[1] == images.shape[2] and resolution > size and (resolution - size) % 2 == 0:
            x = F.pad(x, (pad, pad, pad, pad), value=-FASHION_MEAN / FASHION_STD)
        else:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return TensorDataset(x.contiguous(), torch.from_numpy(labels.astype(np.int64)))


def _check_idx_pair(images: np.ndarray, labels: np.ndarray, img_path: Path, lbl_path: Path, *,
                    classes: int) -> None:
    """Images N x H x W and labels N, the same N > 0, every label a class index."""
    if images.ndim != 3 or min(images.shape) < 1:
        raise NseError(f"{img_path} holds shape {images.shape}; expected N x H x W images with N, H, W >= 1")
    if labels.ndim != 1:
        raise NseError(f"{lbl_path} holds shape {labels.shape}; expected one label per image")
    if len(labels) != len(images):
        raise NseError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    if labels.max() >= classes:
        bad = int(np.argmax(labels >= classes))
        raise NseError(f"{lbl_path}: label {labels[bad]} at index {bad} is out of range for {classes} classes "
                       f"(0..{classes - 1})")


def _check_tensor_memory(n: int, resolution: int, path: Path) -> None:
    """The float32 tensors of ``n`` images at ``resolution`` (about three copies while they are made) must fit."""
    from nse_hw.space.size import gib, host_memory

    need, limit = 3 * 4 * n * resolution * resolution, host_memory()
    if need > limit:
        raise NseError(f"{n} images of {path} at {resolution}x{resolution} px need about {gib(need)} "
                       f"(memory: {gib(limit)}); lower the resolution or limit the images")


def _fashion_root(source: str) -> Path:
    if source != "fashion-mnist":
        return Path(source)
    if _idx_file(FASHION_DIR, "train-images-idx3-ubyte"):
        return FASHION_DIR
    cache = Path.home() / ".cache" / "nse-hw"
    raw = cache / "FashionMNIST" / "raw"
    if not _idx_file(raw, "train-images-idx3-ubyte"):
        from nse_hw.compat import import_torchvision

        log.info("Fashion-MNIST not in %s; trying torchvision's downloader into %s", FASHION_DIR, cache)
        try:
            import_torchvision().datasets.FashionMNIST(str(cache), download=True)
        except Exception as exc:  # no internet, no disk: say what to do instead
            raise NseError(f"Fashion-MNIST not found in {FASHION_DIR} and download failed ({exc}); install "
                           "Debian's dataset-fashion-mnist or pass --data DIR") from None
    return raw


def _split(n: int, heldout_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    perm = np.random.default_rng(seed).permutation(n)
    n_held = max(1, int(round(n * heldout_fraction)))
    return sorted(perm[n_held:].tolist()), sorted(perm[:n_held].tolist())


def _kept(total: int, n: int | None, seed: int) -> list[int] | None:
    """The sorted positions a limit of ``n`` keeps of ``total`` (seeded), or None when it keeps them all."""
    if n is None or n >= total:
        return None
    return sorted(np.random.default_rng(seed).permutation(total)[:n].tolist())


def _limit(ds: Dataset, n: int | None, seed: int) -> Dataset:
    keep = _kept(len(ds), n, seed)  # type: ignore[arg-type]
    return ds if keep is None else Subset(ds, keep)


def native_resolution(source: str) -> int | None:
    """The input size a source fixes (a task's canvas), or None where the recipe chooses it."""
    task = load_task(source)
    return None if task is None else task.canvas


def _task_bundle(task: ClutterTask, resolution: int | None, heldout_fraction: float, seed: int,
                 limits: tuple[int | None, int | None, int | None]) -> DataBundle:
    if resolution is not None and resolution != task.canvas:
        raise NseError(f"task {task.name} draws {task.canvas}x{task.canvas} px canvases, but the config asks for "
                       f"resolution {resolution}; set the resolution to {task.canvas} (or leave it unset)")
    root = _fashion_root("fashion-mnist")
    images, labels, _ = _fashion_arrays(root, "train")
    test = _fashion_arrays(root, "test")[:2]
    train_idx, held_idx = _split(len(images), heldout_fraction, seed)

    def pick(idx: list[int], n: int | None) -> tuple[np.ndarray, np.ndarray]:
        if (keep := _kept(len(idx), n, seed)) is not None:  # the images a limit keeps, as _limit keeps them
            idx = [idx[i] for i in keep]
        return images[idx], labels[idx]

    train, held, tst, (mean, std) = canvas_sets(task, pick(train_idx, limits[0]), pick(held_idx, limits[1]), test,
                                                test_length=limits[2])
    return DataBundle(task.name, train, held, tst, 1, 10, task.canvas, FASHION_LABELS, (mean,), (std,))


def load_data(source: str, *, resolution: int | None, heldout_fraction: float = 0.1, seed: int = 0,
              limit_train: int | None = None, limit_heldout: int | None = None,
              limit_test: int | None = None) -> DataBundle:
    """Load ``source``: 'fashion-mnist', a task (``configs/tasks/NAME.yaml`` by name, or a task YAML file), a
    directory of IDX files, or an ImageFolder root with train/ and val/.

    A task fixes the input size (its canvas); the other sources take ``resolution`` (required for them)."""
    task = load_task(source)
    if task is not None:
        return _task_bundle(task, resolution, heldout_fraction, seed, (limit_train, limit_heldout, limit_test))
    if resolution is None:
        raise NseError(f"data {source} needs a resolution (only a task fixes its own)")
    if source != "fashion-mnist" and not Path(source).exists():
        raise NseError(f"unknown data source {source!r}: not a directory, not fashion-mnist and not a task "
                       f"({', '.join(task_names())}, or a task .yaml file)")
    root = _fashion_root(source)
    try:
        empty = not root.is_dir() or not any(root.iterdir())
    except OSError as exc:
        raise NseError(f"cannot read data directory {root}: {exc.strerror or exc}") from None
    if empty:
        raise NseError(f"data directory {root} is empty or unreadable")
    if (root / "train").is_dir() and (root / "val").is_dir():
        return _image_folder(root, resolution, heldout_fraction, seed, limit_train, limit_heldout, limit_test)
    full = _fashion_tensors(root, "train", resolution)
    train_idx, held_idx = _split(len(full), heldout_fraction, seed)
    return DataBundle(
        "fashion-mnist", _limit(Subset(full, train_idx), limit_train, seed),
        _limit(Subset(full, held_idx), limit_heldout, seed),
        _limit(_fashion_tensors(root, "test", resolution), limit_test, seed),
        1, 10, resolution, FASHION_LABELS, (FASHION_MEAN,), (FASHION_STD,))


def _image_folder(root: Path, resolution: int, heldout_fraction: float, seed: int, limit_train: int | None,
                  limit_heldout: int | None, limit_test: int | None) -> DataBundle:
    tv = __import__("nse_hw.compat", fromlist=["x"]).import_torchvision()
    T = tv.transforms
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.ToTensor(), norm])
    eval_tf = T.Compose([T.Resize(int(resolution * 256 / 224)), T.CenterCrop(resolution), T.ToTensor(), norm])
    try:
        train_aug = tv.datasets.ImageFolder(str(root / "train"), transform=train_tf)
        train_eval = tv.datasets.ImageFolder(str(root / "train"), transform=eval_tf)
        val = tv.datasets.ImageFolder(str(root / "val"), transform=eval_tf)
    except (FileNotFoundError, OSError) as exc:
        raise NseError(f"cannot read image folders under {root}: {exc}") from None
    train_idx, held_idx = _split(len(train_aug), heldout_fraction, seed)
    return DataBundle(root.name, _limit(Subset(train_aug, train_idx), limit_train, seed),
                      _limit(Subset(train_eval, held_idx), limit_heldout, seed), _limit(val, limit_test, seed),
                      3, len(train_aug.classes), resolution, tuple(train_aug.classes), IMAGENET_MEAN, IMAGENET_STD)


def make_loader(ds: Dataset, batch_size: int, *, shuffle: bool, seed: int, workers: int = 0,
                distributed: bool = False, drop_last: bool = False, stream_key: int | None = None) -> DataLoader:
    """A loader with a seeded shuffle; under DDP each rank reads its own shard.

    A generated training stream (a task's :class:`~nse_hw.train.cluttered.CanvasSet`) draws the canvases of
    ``stream_key`` (default: ``seed``), so every pass sees new ones and every rank the same ones."""
    if isinstance(ds, CanvasSet):
        ds = ds.with_key(seed if stream_key is None else stream_key)
    if distributed:
        sampler = DistributedSampler(ds, shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=workers,
                      drop_last=drop_last)
