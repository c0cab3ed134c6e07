"""Scoring sampled architectures: BN recalibration on the weight split, then top-1 on the held-out split.

Under torchrun the candidates are dealt round-robin to the ranks; each rank scores its own on the whole held-out
split and one all-reduce gathers the accuracies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import torch
from torch import Tensor

from nse_hw.progress import progress_bar
from nse_hw.supernet import Path, SuperNet, recalibrate_bn
from nse_hw.train.dist import all_reduce_sum, is_main, rank, world_size

Batches = Callable[[], Iterable[tuple[Tensor, Tensor]]]


@torch.no_grad()
def top1(net: torch.nn.Module, path: Path | None, batches: Iterable[tuple[Tensor, Tensor]], *, device: torch.device,
         memory_format: torch.memory_format = torch.contiguous_format) -> float:
    """Top-1 of ``net`` on ``batches``: a supernet along ``path``, or a plain network (``path=None``)."""
    net.eval()
    correct = total = 0
    for x, y in batches:
        x = x.to(device, memory_format=memory_format)
        pred = (net(x) if path is None else net(x, path)).argmax(1).cpu()
        correct += int((pred == y).sum())
        total += int(y.numel())
    if total == 0:
        raise ValueError("held-out split is empty: nothing to score on")
    return correct / total


def score_paths(net: SuperNet, paths: list[Path], *, recal: Batches, heldout: Batches, bn_batches: int,
                score_batches: int | None, device: torch.device,
                memory_format: torch.memory_format = torch.contiguous_format, desc: str = "scoring") -> list[float]:
    """Held-out top-1 of every path after recalibrating BN on ``bn_batches`` batches of ``recal()``.

    ``recal()`` and ``heldout()`` build fresh, identically seeded iterables, so every candidate sees the same
    images.
    """
    mine = list(range(rank(), len(paths), world_size()))
    accs = torch.zeros(len(paths), dtype=torch.float64, device=device)
    with progress_bar(mine, desc=desc, disable=not is_main(), leave=False) as bar:
        for i in bar:
            xs = _images(islice(iter(recal()), bn_batches), device, memory_format)
            recalibrate_bn(net, paths[i], xs)
            held = heldout() if score_batches is None else islice(iter(heldout()), score_batches)
            accs[i] = top1(net, paths[i], held, device=device, memory_format=memory_format)
    return all_reduce_sum(accs).cpu().tolist()


def _images(batches: Iterable[tuple[Tensor, Tensor]], device: torch.device,
            memory_format: torch.memory_format) -> Iterator[Tensor]:
    for x, _ in batches:
        yield x.to(device, memory_format=memory_format)
