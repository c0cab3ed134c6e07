"""What every part of a search shares: config, space, table, latency model, budget, data, run dir, device."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from nse_hw.errors import NseError
from nse_hw.evolve.budget import Budget, check_budget
from nse_hw.evolve.config import SearchConfig
from nse_hw.evolve.rundir import RunDir, RunInfo
from nse_hw.latency import LatencyTable, load_table
from nse_hw.space import SearchSpace, load_space
from nse_hw.space.size import check_fits, device_memory, estimate, largest_supernet
from nse_hw.supernet import Proxy, SpaceLatency
from nse_hw.train.data import DataBundle, load_data, make_loader, native_resolution
from nse_hw.train.dist import device as default_device
from nse_hw.train.dist import is_distributed

log = logging.getLogger(__name__)


def derive_seed(*parts: int) -> int:
    """One 32-bit seed per (run seed, round, epoch, purpose...): every random stream is reproducible on resume."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class Context:
    cfg: SearchConfig
    info: RunInfo
    space: SearchSpace
    table: LatencyTable
    latency: SpaceLatency
    budget: Budget
    data: DataBundle
    run: RunDir
    device: torch.device

    @classmethod
    def build(cls, cfg: SearchConfig, info: RunInfo, run: RunDir) -> Context:
        """Load space, table and data, and check the budget (every problem is an NseError/ValueError)."""
        space = load_space(cfg.space)
        table = load_table(info.table)
        latency, budget = check_budget(space, table, info.budget_ms)
        d = cfg.data
        res = native_resolution(d.source) or cfg.proxy.resolution  # a task's canvas fixes the input size
        data = load_data(d.source, resolution=res, heldout_fraction=d.heldout_fraction,
                         seed=cfg.seed, limit_train=d.limit_train, limit_heldout=d.limit_heldout, limit_test=0)
        if len(data.train) < d.batch_size:  # type: ignore[arg-type]
            raise NseError(f"the weight split has {len(data.train)} images, fewer than one batch "  # type: ignore
                           f"({d.batch_size}); lower data.batch_size or raise data.limit_train")
        if len(data.heldout) == 0:  # type: ignore[arg-type]
            raise NseError("the held-out split is empty; raise data.heldout_fraction or data.limit_heldout")
        device = default_device()
        big = largest_supernet(space, resolution=data.resolution, channels=data.channels,
                               classes=data.classes, width_mult=cfg.proxy.width_mult, k=cfg.evolve.subspace_size)
        check_fits(estimate(big), batch=d.batch_size, what=f"the supernet of space {space.name} (proxy, "
                   f"{cfg.evolve.subspace_size} ops per layer)", limit=device_memory(device))
        return cls(cfg, info, space, table, latency, budget, data, run, device)

    @property
    def proxy(self) -> Proxy:
        return Proxy(self.data.resolution, self.data.channels, self.data.classes, self.cfg.proxy.width_mult)

    @property
    def heldout_images(self) -> int:
        """The whole held-out split: what a stand-alone (short-training) score is measured on."""
        return len(self.data.heldout)  # type: ignore[arg-type]

    @property
    def scored_images(self) -> int:
        """Held-out images behind each architecture's supernet score."""
        n, per = self.heldout_images, self.cfg.evolve.score_batches
        return n if per is None else min(n, per * self.cfg.data.eval_batch_size)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.cfg.proxy.channels_last else torch.contiguous_format

    @property
    def rounds(self) -> int:
        k = self.cfg.evolve.subspace_size
        return self.cfg.evolve.rounds or max(1, (len(self.space.pool) - 1) // (k - 1))

    def loader(self, ds: Dataset, *, seed: int, train: bool, distributed: bool | None = None) -> DataLoader:
        d = self.cfg.data
        dist_ = is_distributed() if distributed is None else distributed
        return make_loader(ds, d.batch_size if train else d.eval_batch_size, shuffle=train, seed=seed,
                           workers=d.workers, distributed=dist_, drop_last=train)


def cycle(make: object) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches from fresh loaders ``make(i)`` (pass ``i``); an empty pass is an error, not a hang."""
    i = 0
    while True:
        empty = True
        for batch in make(i):  # type: ignore[operator]
            empty = False
            yield batch
        if empty:
            raise NseError("a data loader yielded no batch (split smaller than one batch?)")
        i += 1

