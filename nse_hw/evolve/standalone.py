"""Score one architecture the short, stand-alone way: built alone at the proxy, trained ``baseline.steps`` steps
(the search's weight optimiser at ``baseline.lr``, cosine) on the weight split, top-1 on the whole held-out
split. Random search scores its draws this way, and NSE's optional re-rank (``evolve.rerank``) its last round's
best archs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nse_hw.blocks import build_network
from nse_hw.errors import NseError
from nse_hw.evolve.context import Context, cycle, derive_seed
from nse_hw.evolve.scoring import top1
from nse_hw.evolve.trainer import weight_optimizer
from nse_hw.space import Layer, adapt_arch
from nse_hw.supernet.fast import crop_dead_taps

TRAIN = 12  # purpose of the derived seeds (init and data order of the index-th scored arch)


def train_and_score(ctx: Context, choices: list[Layer], index: int) -> float:
    """Train the arch alone for ``baseline.steps`` steps on the weight split; held-out top-1."""
    cfg, p = ctx.cfg, ctx.proxy
    arch = adapt_arch(ctx.space.arch(choices), resolution=p.resolution, channels=p.channels, classes=p.classes,
                      width_mult=p.width_mult)
    net = build_network(arch, seed=derive_seed(cfg.seed, TRAIN, index))
    if cfg.proxy.crop_dead_taps:
        crop_dead_taps(net, lambda: net.eval()(torch.zeros(2, p.channels, p.resolution, p.resolution)))
    net = net.to(ctx.device, memory_format=ctx.memory_format)
    opt = weight_optimizer(list(net.parameters()), cfg.train.optimizer, lr=cfg.baseline.lr,
                           momentum=cfg.train.momentum, weight_decay=cfg.train.weight_decay)
    steps = cfg.baseline.steps
    data = cycle(lambda i: ctx.loader(ctx.data.train, seed=derive_seed(cfg.seed, TRAIN, i), train=True,
                                      distributed=False))
    net.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 0.5 * cfg.baseline.lr * (1 + math.cos(math.pi * step / steps))
        x, y = next(data)
        loss = F.cross_entropy(net(x.to(ctx.device, memory_format=ctx.memory_format)), y.to(ctx.device))
        if not torch.isfinite(loss):
            raise NseError(f"stand-alone arch {index}: loss became NaN/inf at step {step} (lower baseline.lr)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return top1(net, None, ctx.loader(ctx.data.heldout, seed=0, train=False, distributed=False),
                device=ctx.device, memory_format=ctx.memory_format)
