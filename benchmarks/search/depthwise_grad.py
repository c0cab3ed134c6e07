"""What ``proxy.depthwise_grad`` buys: CPU seconds of a supernet step with oneDNN's depthwise gradients against the
small-map ones of nse_hw/blocks/fast.py, on each laptop preset's proxy (the same weights, paths and batch).

For every preset: a supernet on random K-op subspaces of its space at its proxy size, P paths drawn as training
draws them; per path, a weight step (forward, backward, no optimizer) and a two-path α step, timed alternately
with and without the option (CPU seconds, medians of reps), plus how far the whole gradient moves (L2 norm of the
difference over the norm, train-mode BN: per-parameter ratios mean nothing where a true gradient is ~1e-7).
Writes benchmarks/search/depthwise-grad.json (ratios with this host's fingerprint: the rule was measured on
oneDNN on AMD EPYC; other CPUs may gain less or more).

Run pinned: taskset -c 0 .venv/bin/python benchmarks/search/depthwise_grad.py [--paths 12] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nse_hw.atomic import atomic_write_json
from nse_hw.blocks.fast import crop_dead_taps
from nse_hw.evolve import load_search_config, preset_path
from nse_hw.hostcpu import this_cpu
from nse_hw.space import load_space
from nse_hw.supernet import Proxy, SuperNet, sample_two_path, uniform_path
from nse_hw.train.data import native_resolution

OUT = Path(__file__).with_name("depthwise-grad.json")
CL = torch.channels_last


def _cpu_s(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    return statistics.median(ts)


def _preset(name: str, *, paths: int, reps: int, seed: int) -> dict:
    cfg = load_search_config(preset_path(name))
    space = load_space(cfg.space)
    res = native_resolution(cfg.data.source) or cfg.proxy.resolution
    proxy = Proxy(res, 1, 10, cfg.proxy.width_mult)
    rng = np.random.default_rng(seed)
    subs = [tuple(space.pool[i] for i in rng.permutation(len(space.pool))[:cfg.evolve.subspace_size])
            for _ in space.searchable]
    torch.manual_seed(seed)
    nets = {}
    full = tuple(tuple(range(len(s))) for s in subs)
    x0 = torch.zeros(2, 1, res, res)
    for own in (False, True):
        net = SuperNet(space, subs, proxy=proxy)
        if own:
            net.load_state_dict(nets[False].state_dict())
        crop_dead_taps(net, lambda n=net: n.eval()(x0, full), depthwise_grad=own)
        nets[own] = net.to(memory_format=CL).train()
    n_own = sum(getattr(m, "own_grads", (False,))[0] for m in nets[True].modules())
    bs = cfg.data.batch_size
    x = torch.randn(bs, 1, res, res).to(memory_format=CL)
    y = torch.randint(0, 10, (bs,))
    nonempty = [not s for s in nets[False].skippable]
    weight, arch, diffs = [], [], []
    for _ in range(paths):
        path = uniform_path(nets[False].alive.numpy(), nonempty, rng)
        pair = sample_two_path(nets[False].probs().detach().numpy(), nets[False].alive.numpy(), nonempty, rng)

        def w_step(net, path=path):
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, path), y).backward()

        def a_step(net, pair=pair):
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x, pair), y).backward()

        for net in nets.values():  # warm-up, and the gradients to compare
            w_step(net)
        ref, own = ([p.grad.flatten() for p in n.parameters() if p.grad is not None] for n in nets.values())
        diffs.append(float(torch.cat(own).sub(torch.cat(ref)).norm() / torch.cat(ref).norm()))
        w = {own: _cpu_s(lambda n=n: w_step(n), reps) for own, n in nets.items()}
        a = {own: _cpu_s(lambda n=n: a_step(n), reps) for own, n in nets.items()}
        weight.append(w[True] / w[False])
        arch.append(a[True] / a[False])
    return {"preset": name, "resolution": res, "paths": paths, "reps": reps, "convs_with_own_grads": n_own,
            "weight_step_ratio": {"median": statistics.median(weight), "p10": float(np.percentile(weight, 10)),
                                  "p90": float(np.percentile(weight, 90))},
            "alpha_step_ratio": {"median": statistics.median(arch), "p10": float(np.percentile(arch, 10)),
                                 "p90": float(np.percentile(arch, 90))},
            "max_rel_grad_l2_diff": max(diffs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=12)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--presets", default="default,ct-fmnist-48")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"what": __doc__.split("\n\n")[0], "host": this_cpu(), "torch": torch.__version__, "threads": 1,
           "presets": []}
    for name in args.presets.split(","):
        r = _preset(name, paths=args.paths, reps=args.reps, seed=0)
        out["presets"].append(r)
        print(f"{name} ({r['resolution']} px, {r['convs_with_own_grads']} convs with own gradients): CPU s with / "
              f"without: weight step {r['weight_step_ratio']['median']:.2f} (p10 {r['weight_step_ratio']['p10']:.2f}"
              f", p90 {r['weight_step_ratio']['p90']:.2f}), α step {r['alpha_step_ratio']['median']:.2f}; "
              f"gradient moves by {r['max_rel_grad_l2_diff']:.1e} of its norm at most", flush=True)
        atomic_write_json(OUT, out)


if __name__ == "__main__":
    main()
