"""Retrain an architecture from scratch on its proxy task: one process or torchrun/DDP, resumable after kill -9.

The arch file is the deployment network (e.g. 224x224x3, 1000 classes); training runs on its proxy view
(:func:`nse_hw.space.adapt_arch`: the data's resolution, channels and classes, the config's width multiplier).
A run directory holds ``arch.json`` (deployment), ``proxy_arch.json`` (what is trained), ``config.yaml``,
``metrics.jsonl``, ``curve.png``, ``last.pt`` / ``best.pt`` (written atomically after every epoch, so a kill
loses at most the epoch in flight) and ``result.json`` (test top-1 of the best checkpoint). Only rank 0 writes.

Resume is exact: the shuffle of epoch e is seeded by (seed, e) and augmentation draws from a generator seeded
by (seed, e, rank), so a resumed run gives the same weights as one that was never stopped.
"""

from __future__ import annotations

import logging
import math
import random
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, Dataset, Subset

from nse_hw import __version__
from nse_hw.atomic import atomic_write_json, atomic_write_text
from nse_hw.blocks import build_network
from nse_hw.blocks.fast import for_cpu_training
from nse_hw.config import to_dict
from nse_hw.errors import NseError
from nse_hw.progress import progress_bar
from nse_hw.space import Arch, adapt_arch, save_arch
from nse_hw.space.size import check_fits, device_memory, estimate
from nse_hw.train import dist
from nse_hw.train.checkpoint import load_checkpoint, save_checkpoint
from nse_hw.train.data import DataBundle, load_data, make_loader, native_resolution
from nse_hw.train.recipe import TrainConfig, make_ema, make_optimizer, make_scheduler
from nse_hw.train.report import write_curve, write_metrics
from nse_hw.train.rundir import BEST, LAST, RESULT, check_config_unedited, open_run_dir
from nse_hw.train.threads import torch_threads

log = logging.getLogger(__name__)
CKPT_FORMAT = "nse-hw/train-checkpoint/1"
_REQUIRED = ("arch", "proxy_arch", "config", "data", "model", "epoch")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    test_top1: float
    best_val_top1: float
    best_epoch: int
    epochs: int
    wall_s: float


def read_train_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint, checked to be one (truncated/foreign files are an NseError naming the file)."""
    state = load_checkpoint(path)
    missing = [k for k in _REQUIRED if k not in state]
    if state.get("format") != CKPT_FORMAT or missing:
        raise NseError(f"{path} is not an nse-hw training checkpoint (format {state.get('format')!r}"
                       + (f", missing {', '.join(missing)})" if missing else ")"))
    return state


def eval_state_dict(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """The weights to evaluate and export: the EMA's when the run kept one, else the raw model's."""
    ema = state.get("ema")
    if ema:
        return {k.removeprefix("module."): v for k, v in ema.items() if k != "n_averaged"}, "ema"
    return state["model"], "model"


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], *, source: str, arch: Arch) -> None:
    """Strict load; a mismatch means the checkpoint belongs to another architecture: say so in one line."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        detail = next((s.strip() for s in str(exc).splitlines()[1:] if s.strip()), str(exc))
        raise NseError(f"{source} does not fit architecture {arch_summary(arch)}: {detail[:200]}") from None


def arch_summary(arch: Arch) -> str:
    return f"{'x'.join(map(str, arch.input))}->{arch.classes} ({len(arch.layers)} layers)"


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def augment(x: torch.Tensor, *, pad: int, hflip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop after ``pad`` pixels of edge padding, per image."""
    n, _, h, w = x.shape
    if hflip:
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        off = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen).to(x.device)
        rows = off[:, :1] + torch.arange(h, device=x.device)  # [n, h]: each image's crop window, gathered at once
        cols = off[:, 1:] + torch.arange(w, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        # plain NCHW strides: with one channel .contiguous() keeps the permuted strides, and convs then take
        # another (numerically different) path than for the stacked crops this replaced
        x = x.clone(memory_format=torch.contiguous_format)
    return x


@torch.no_grad()
def evaluate(model: nn.Module, ds: Dataset, *, batch_size: int, device: torch.device,
             desc: str = "eval") -> tuple[float, float]:
    """(top-1, mean CE) over all of ``ds``; under DDP each rank takes every world_size-th image, then sum."""
    shard = Subset(ds, range(dist.rank(), len(ds), dist.world_size())) if dist.is_distributed() else ds  # type: ignore[arg-type]
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    loader = DataLoader(shard, batch_size=batch_size)
    for x, y in progress_bar(loader, desc=desc, leave=False, disable=not dist.is_main()):
        x, y = x.to(device), y.to(device)
        logits = model(x)
        totals += torch.tensor([(logits.argmax(1) == y).sum().item(),
                                F.cross_entropy(logits, y, reduction="sum").item(), len(y)], dtype=torch.float64)
    model.train(was_training)
    totals = dist.all_reduce_sum(totals.to(device)).cpu()
    if totals[2] == 0:
        raise NseError(f"{desc}: the split is empty")
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def recalibrate_bn(model: nn.Module, ds: Dataset, *, batches: int, batch_size: int, device: torch.device) -> None:
    """Re-estimate BN statistics for ``model``'s weights (torch's update_bn) on the first training images;
    under DDP the ranks split them and average the result, so every rank evaluates the same network."""
    n = min(len(ds), batches * batch_size)  # type: ignore[arg-type]
    shard = Subset(ds, list(range(dist.rank(), n, dist.world_size())))
    update_bn(DataLoader(shard, batch_size=batch_size), model, device=device)
    if dist.is_distributed():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for t in (m.running_mean, m.running_var):
                    t.copy_(dist.all_reduce_sum(t.clone()) / dist.world_size())


def _data_spec(bundle: DataBundle, source: str) -> dict[str, Any]:
    return {"source": source, "name": bundle.name, "resolution": bundle.resolution, "channels": bundle.channels,
            "classes": bundle.classes, "labels": list(bundle.labels), "mean": list(bundle.mean),
            "std": list(bundle.std), "layout": "NCHW float32, (x/255 - mean) / std"}


class _Run:
    """The state of one run on one rank: data, model (DDP-wrapped when distributed), optimiser, EMA."""

    def __init__(self, arch: Arch, *, data: str, cfg: TrainConfig, out: Path, preset: str) -> None:
        self.arch, self.cfg, self.out, self.preset = arch, cfg, out, preset
        self.device = dist.device()
        res = native_resolution(data) or cfg.resolution or arch.input[0]  # a task's canvas fixes its size
        self.bundle = load_data(data, resolution=res, heldout_fraction=cfg.heldout_fraction, seed=cfg.seed,
                                limit_train=cfg.limit_train, limit_heldout=cfg.limit_heldout,
                                limit_test=cfg.limit_test)
        self.data = _data_spec(self.bundle, data)
        self.proxy = adapt_arch(arch, resolution=self.bundle.resolution, channels=self.bundle.channels,
                                classes=self.bundle.classes, width_mult=cfg.width_mult)
        ws = dist.world_size()
        if cfg.batch_size % ws:
            raise NseError(f"batch size {cfg.batch_size} does not split over {ws} processes")
        self.rank_batch = cfg.batch_size // ws
        if len(self.bundle.train) < cfg.batch_size:  # type: ignore[arg-type]
            raise NseError(f"the training split has {len(self.bundle.train)} images, fewer than one batch "  # type: ignore[arg-type]
                           f"({cfg.batch_size})")
        check_fits(estimate(self.proxy), batch=self.rank_batch, what=f"proxy network {arch_summary(self.proxy)}",
                   limit=device_memory(self.device))  # refuse before building what cannot fit
        _seed_everything(cfg.seed)
        self.model = build_network(self.proxy, seed=cfg.seed).to(self.device)
        if cfg.fast_convs and self.device.type == "cpu":
            for_cpu_training(self.model, channels=self.bundle.channels, resolution=self.bundle.resolution)
        # the format the training step runs in; checkpoints keep the values (a loader copies them into its own)
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = DistributedDataParallel(self.model) if dist.is_distributed() else self.model
        self.opt = make_optimizer(self.model, cfg)
        self.sched = make_scheduler(self.opt, cfg, len(self._loader(0)))
        self.ema = make_ema(self.model, cfg.ema_decay)
        self.crit = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.epoch, self.best_top1, self.best_epoch, self.wall_s = 0, -1.0, 0, 0.0
        self.history: list[dict[str, Any]] = []

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def _loader(self, epoch: int) -> DataLoader:
        if dist.is_distributed():
            loader = make_loader(self.bundle.train, self.rank_batch, shuffle=True, seed=self.cfg.seed,
                                 workers=self.cfg.workers, distributed=True, drop_last=True,
                                 stream_key=self.cfg.seed + epoch)  # the single-process run's canvases
            loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
            return loader
        return make_loader(self.bundle.train, self.rank_batch, shuffle=True, seed=self.cfg.seed + epoch,
                           workers=self.cfg.workers, drop_last=True)  # full batches: BN needs > 1 image

    def state(self) -> dict[str, Any]:
        return {"format": CKPT_FORMAT, "arch": self.arch.to_dict(), "proxy_arch": self.proxy.to_dict(),
                "config": to_dict(self.cfg), "preset": self.preset, "data": self.data,
                "model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "epoch": self.epoch,
                "best_top1": self.best_top1, "best_epoch": self.best_epoch, "history": self.history,
                "wall_s": self.wall_s, "rng": _rng_state(), "world_size": dist.world_size(),
                "versions": {"nse_hw": __version__, "torch": str(torch.__version__)}}

    def restore(self, state: dict[str, Any], source: str) -> None:
        if Arch.from_dict(state["arch"]) != self.arch:
            raise NseError(f"{source} was trained for another architecture than the one given")
        load_weights(self.model, state["model"], source=source, arch=self.proxy)
        if (state.get("ema") is None) != (self.ema is None):
            raise NseError(f"{source}: its EMA setting differs from the config's ema_decay")
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.epoch, self.best_top1, self.best_epoch = state["epoch"], state["best_top1"], state["best_epoch"]
        self.history, self.wall_s = list(state["history"]), float(state["wall_s"])
        _set_rng_state(state["rng"])

    def train_epoch(self) -> dict[str, float]:
        cfg, e = self.cfg, self.epoch
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + e * 1009 + dist.rank())
        loss_sum = correct = seen = 0.0  # Python floats are float64: the sums of a float64 tensor, fewer syncs
        self.net.train()
        bar = progress_bar(self._loader(e), desc=f"epoch {e + 1}/{cfg.epochs}", leave=False, disable=not dist.is_main())
        for step, (x, y) in enumerate(bar):
            x = augment(x.to(self.device), pad=cfg.crop_padding, hflip=cfg.hflip, gen=gen)
            x = x.contiguous(memory_format=self.memory_format)
            y = y.to(self.device)
            logits = self.net(x)
            loss = self.crit(logits, y)
            loss_v = loss.item()  # the step's one read of the loss from the device
            if not math.isfinite(loss_v):
                raise NseError(f"training diverged at epoch {e + 1}, step {step} (loss {loss_v}); lower --lr")
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            loss_sum += loss_v * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_v:.3f}", lr=f"{self.sched.get_last_lr()[0]:.4f}", refresh=False)
        totals = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
        totals = dist.all_reduce_sum(totals.to(self.device)).cpu()
        return {"train_loss": float(totals[0] / totals[2]), "train_top1": float(totals[1] / totals[2])}

    def save(self, *, improved: bool) -> None:
        """Rank 0: the checkpoints first (so the metrics never list an epoch last.pt lacks), then the rest."""
        if not dist.is_main():
            return
        state = self.state()
        # best.pt before last.pt: a kill between them leaves last.pt one epoch behind, and the resumed run redoes
        # that epoch (exactly) and rewrites best.pt; the other order left best.pt stale for good.
        if improved:
            save_checkpoint(state, self.out / BEST)
        save_checkpoint(state, self.out / LAST)
        write_metrics(self.out / "metrics.jsonl", self.history)
        write_curve(self.out / "curve.png", self.history,
                    title=f"{self.data['name']}, proxy {arch_summary(self.proxy)}, width x{self.cfg.width_mult}")

    def write_header(self, config_path: str | None) -> None:
        if not dist.is_main():
            return
        save_arch(self.arch, self.out / "arch.json")
        save_arch(self.proxy, self.out / "proxy_arch.json")
        body = {"config_file": config_path, "preset": self.preset, "data": self.data["source"],
                "world_size": dist.world_size(), **to_dict(self.cfg)}
        atomic_write_text(self.out / "config.yaml", yaml.safe_dump(body, sort_keys=False))


def run_epochs(run: _Run) -> None:
    cfg = run.cfg
    while run.epoch < cfg.epochs:
        start = time.perf_counter()
        stats = run.train_epoch()
        if run.ema is not None:  # its BN statistics must describe the averaged weights (see make_ema)
            recalibrate_bn(run.ema.module, run.bundle.train, batches=cfg.ema_bn_batches, batch_size=run.rank_batch,
                           device=run.device)
        val_top1, val_loss = evaluate(run.eval_model, run.bundle.heldout, batch_size=cfg.eval_batch_size,
                                      device=run.device, desc="held-out")
        run.epoch += 1
        improved = val_top1 > run.best_top1
        if improved:
            run.best_top1, run.best_epoch = val_top1, run.epoch
        dt = time.perf_counter() - start
        run.wall_s += dt
        run.history.append({"epoch": run.epoch, **stats, "val_top1": val_top1, "val_loss": val_loss,
                            "lr": run.sched.get_last_lr()[0], "epoch_s": round(dt, 3)})
        run.save(improved=improved)
        log.info("epoch %d/%d: loss %.4f, train %.2f%%, held-out %.2f%%%s, %.1f s", run.epoch, cfg.epochs,
                 stats["train_loss"], 100 * stats["train_top1"], 100 * val_top1, " (best)" if improved else "", dt)


def finish(run: _Run) -> TrainResult:
    """Test top-1 of the eval weights (EMA if kept) of the best or the last checkpoint (``test_weights``), written
    to result.json."""
    dist.barrier()  # best.pt is on disk before anyone reads it
    ckpt = BEST if run.cfg.test_weights == "best" else LAST
    weights, which = eval_state_dict(read_train_checkpoint(run.out / ckpt))
    model = build_network(run.proxy).to(run.device)
    load_weights(model, weights, source=str(run.out / ckpt), arch=run.proxy)
    top1, loss = evaluate(model, run.bundle.test, batch_size=run.cfg.eval_batch_size, device=run.device,
                          desc="test")
    result = TrainResult(run.out, top1, run.best_top1, run.best_epoch, run.epoch, run.wall_s)
    if dist.is_main():
        atomic_write_json(run.out / RESULT, {
            "test_top1": top1, "test_loss": loss, "test_images": len(run.bundle.test),  # type: ignore[arg-type]
            "best_val_top1": run.best_top1, "best_epoch": run.best_epoch, "epochs": run.epoch,
            "train_wall_s": round(run.wall_s, 2), "weights": f"{ckpt} ({which})", "preset": run.preset,
            "width_mult": run.cfg.width_mult, "proxy_input": list(run.proxy.input),
            "proxy_classes": run.proxy.classes, "deployment_input": list(run.arch.input),
            "deployment_classes": run.arch.classes, "world_size": dist.world_size(), "data": run.data["source"],
            "threads": torch.get_num_threads()})
    log.info("test top-1 %.2f%% (%s, best held-out epoch %d)", 100 * top1, which, run.best_epoch)
    return result


def train(arch: Arch, *, data: str, cfg: TrainConfig, out: str | Path, preset: str = "",
          config_path: str | None = None, resume: bool = False) -> TrainResult:
    """Train ``arch``'s proxy view from scratch (or resume ``out``); returns the test top-1 and where it is.

    torch runs with ``cfg.threads`` threads meanwhile (None: as it is); result.json records the count used."""
    with torch_threads(cfg.threads):
        return _train(arch, data=data, cfg=cfg, out=out, preset=preset, config_path=config_path, resume=resume)


def _train(arch: Arch, *, data: str, cfg: TrainConfig, out: str | Path, preset: str,
           config_path: str | None, resume: bool) -> TrainResult:
    dist.init_distributed()
    out = Path(out)
    with ExitStack() as held:
        dist.on_main(lambda: open_run_dir(out, resume=resume, held=held))  # before rank 0 writes anything
        state = read_train_checkpoint(out / LAST) if resume else None
        if state is not None:
            dist.on_main(lambda: check_config_unedited(out, state["config"]))
        run = _Run(arch, data=data, cfg=cfg, out=out, preset=preset)
        if state is not None:
            run.restore(state, str(out / LAST))
            log.info("resuming %s after epoch %d of %d", out, run.epoch, cfg.epochs)
        else:
            run.write_header(config_path)
        log.info("training proxy %s of deployment %s (width x%s) on %s, %d process(es)", arch_summary(run.proxy),
                 arch_summary(arch), cfg.width_mult, run.data["name"], dist.world_size())
        run_epochs(run)
        return finish(run)
