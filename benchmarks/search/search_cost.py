"""Cost of supernet training on the default preset's proxy (nse27, 32 px, 1 channel, width 0.25, batch 64).

Prints, all measured in this one process (ratios only; absolute times drift run to run):
* a supernet weight step on a sampled path vs the same subnet built and trained alone (goal <= 1.5x);
* an architecture (two-path) step, and an average iteration (weight step + 1/arch_every α step) vs alone;
* the expected-latency term's share (forward + backward of E[latency] and the penalty) of an α step and of an
  average iteration (goal < 1%).

Run pinned: taskset -c 0 .venv/bin/python benchmarks/search/search_cost.py [--table host-litert] [--paths 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from nse_hw.blocks import build_network
from nse_hw.blocks.fast import crop_dead_taps
from nse_hw.evolve import load_search_config, preset_path
from nse_hw.evolve.trainer import RoundTrainer, weight_optimizer
from nse_hw.latency import latency_penalty, load_table
from nse_hw.space import adapt_arch, load_space
from nse_hw.supernet import Proxy, SpaceLatency, SuperNet, uniform_path

CL = torch.channels_last


def _timed(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _fast(net, run):
    crop_dead_taps(net, run)
    return net.to(memory_format=CL).train()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", default="host-litert")
    ap.add_argument("--paths", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_search_config(preset_path("default"))
    space, table = load_space(cfg.space), load_table(args.table)
    proxy = Proxy(cfg.proxy.resolution, 1, 10, cfg.proxy.width_mult)
    rng = np.random.default_rng(0)
    subs = [tuple(space.pool[i] for i in rng.permutation(len(space.pool))[:cfg.evolve.subspace_size])
            for _ in space.searchable]
    torch.manual_seed(0)
    net = SuperNet(space, subs, proxy=proxy)
    full = tuple(tuple(range(len(s))) for s in subs)
    x0 = torch.zeros(2, 1, proxy.resolution, proxy.resolution)
    net = _fast(net, lambda: net.eval()(x0, full))
    t = cfg.train
    trainer = RoundTrainer.build(
        net, SpaceLatency(space, table), target_ms=1.0, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
        weight_decay=t.weight_decay, arch_lr=t.arch_lr, arch_betas=(0.0, 0.999), total_steps=1000, path_prob=0.5,
        arch_every=t.arch_every, penalty="squared", lam=1.0, prune_threshold=-1e9, device=torch.device("cpu"),
        memory_format=CL)
    bs = cfg.data.batch_size
    x = torch.randn(bs, 1, proxy.resolution, proxy.resolution).to(memory_format=CL)
    y = torch.randint(0, 10, (bs,))
    nonempty = [not s for s in net.skippable]
    ratios, sup_w, alone_w, sup_a, elat = [], [], [], [], []
    for i in range(args.paths):
        path = uniform_path(net.alive.numpy(), nonempty, rng)
        alone = build_network(adapt_arch(net.export(path), resolution=proxy.resolution, channels=1, classes=10,
                                         width_mult=proxy.width_mult), seed=i)
        alone = _fast(alone, lambda a=alone: a.eval()(x0))
        opt = weight_optimizer(list(alone.parameters()), t.optimizer, lr=t.lr, momentum=t.momentum,
                               weight_decay=t.weight_decay)

        def alone_step(alone=alone, opt=opt):
            loss = F.cross_entropy(alone(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def sup_step(path=path):
            loss = F.cross_entropy(net(x, path), y)
            trainer.opt_w.zero_grad(set_to_none=True)
            loss.backward()
            trainer.opt_w.step()

        alone_step(), sup_step()  # warm-up
        a, s = _timed(alone_step, args.reps), _timed(sup_step, args.reps)
        alone_w.append(a)
        sup_w.append(s)
        ratios.append(s / a)
        sup_a.append(_timed(lambda: trainer.arch_step(x, y, rng, 0), max(2, args.reps // 2)))
        elat.append(_timed(lambda: torch.autograd.grad(
            latency_penalty(trainer.expected_ms(), 1.0, kind="squared"), [net.alpha]), args.reps))
    k = t.arch_every
    it_sup = statistics.median(sup_w) + statistics.median(sup_a) / k
    print(f"supernet weight step / same subnet alone: median {statistics.median(ratios):.2f}x "
          f"(p10 {np.percentile(ratios, 10):.2f}, p90 {np.percentile(ratios, 90):.2f}; {args.paths} paths; "
          f"{statistics.median(sup_w) * 1e3:.1f} vs {statistics.median(alone_w) * 1e3:.1f} ms)")
    print(f"two-path α step: {statistics.median(sup_a) * 1e3:.1f} ms; average iteration (weight + α/{k}): "
          f"{it_sup * 1e3:.1f} ms = {it_sup / statistics.median(alone_w):.2f}x the subnet alone")
    e = statistics.median(elat)
    print(f"expected-latency term (forward + backward): {e * 1e3:.3f} ms = {100 * e / statistics.median(sup_a):.2f}% "
          f"of an α step, {100 * e / k / it_sup:.2f}% of an average iteration")


if __name__ == "__main__":
    main()
