"""What ``train.fast_convs`` buys the retrain, and why it stays channels-first: CPU seconds of a training step and
wall time of a one-epoch ``train()`` with and without it, and how far float32 gradients fall from float64's.

Two cases, each a searched 80 ms Pixel 1 arch read from a committed search-quality record, with its task's recipe:
the 32 px Fashion-MNIST proxy (``configs/train/fashion-mnist.yaml``, preset ``default``) and the 48 px cluttered
task (``configs/train/ct-fmnist.yaml``). Per case:

- step: one SGD step (forward, backward, update) on a fixed random batch of the recipe's size, the plain net, the
  ``for_cpu_training`` one and that one in channels-last (the same weights) timed in turn, CPU seconds, median of
  ``--reps``;
- epoch: ``train(..., epochs=1)`` on ``--images`` training images, ``fast_convs`` off and on alternated ``--pairs``
  times (the trainer's own ``train_wall_s``: data, steps, held-out pass);
- rounding: one step's whole gradient from float32 against float64 (the same weights and batch, train-mode BN),
  L2 norm of the difference over the norm, channels-first and channels-last, plain and fast; beside it, as a
  yardstick, how far the float64 gradient of a second random batch is (the sampling noise of every SGD step).

Writes benchmarks/train-export/fast-convs.json with this host's fingerprint (the small-map rule was measured on
oneDNN on AMD EPYC; other CPUs may gain less or more).

Run pinned: taskset -c 0 .venv/bin/python benchmarks/train-export/fast_convs.py [--reps 20] [--pairs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.jobs import record_arch  # noqa: E402

from nse_hw.atomic import atomic_write_json  # noqa: E402
from nse_hw.blocks import build_network
from nse_hw.blocks.fast import for_cpu_training
from nse_hw.hostcpu import this_cpu
from nse_hw.space import Arch, adapt_arch
from nse_hw.train.data import native_resolution
from nse_hw.train.recipe import TRAIN_CONFIGS, load_train_config
from nse_hw.train.rundir import RESULT
from nse_hw.train.trainer import train

HERE = Path(__file__).resolve().parent
OUT = HERE / "fast-convs.json"
SEARCH = HERE.parent / "search"
# (case, task, train config, preset, search-quality file, record id): searched archs that committed files hold (the
# README main job's, on which the first ad hoc figures were taken, is in none)
CASES = (
    ("fashion-mnist 32 px", "fashion-mnist", "fashion-mnist.yaml", "default", "search-quality.json",
     "search/80ms/nse/seed0"),
    ("ct-fmnist-48", "ct-fmnist-48", "ct-fmnist.yaml", None, "search-quality-ct48.json", "search/80ms/nse/seed3"),
)


def _net(proxy: Arch, *, res: int, fast: bool) -> torch.nn.Module:
    """The proxy net, float32, seed 0 (so every call has the same weights), plain or made for CPU training."""
    net = build_network(proxy, seed=0)
    return for_cpu_training(net, channels=1, resolution=res) if fast else net.train()


def _grad(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    return torch.cat([p.grad.flatten().double() for p in net.parameters() if p.grad is not None])


def _step_ratio(proxy: Arch, *, res: int, batch: int, reps: int) -> dict:
    """Median CPU s of an SGD step: plain, fast (what the retrain runs) and fast in channels-last (the supernet's
    layout), timed in turn, the order rotating each rep."""
    cl = torch.channels_last
    nets = {"plain": _net(proxy, res=res, fast=False), "fast": _net(proxy, res=res, fast=True),
            "fast_channels_last": _net(proxy, res=res, fast=True).to(memory_format=cl)}
    opts = {k: torch.optim.SGD(n.parameters(), lr=0.01, momentum=0.9) for k, n in nets.items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch, 1, res, res, generator=g), torch.randint(0, 10, (batch,), generator=g)
    xs = {k: x.to(memory_format=cl) if k.endswith("channels_last") else x for k in nets}
    ts: dict[str, list[float]] = {k: [] for k in nets}
    names = list(nets)
    for i in range(reps + 2):  # two warm-up steps each
        for k in names[i % 3:] + names[:i % 3]:
            t = time.process_time()
            _grad(nets[k], xs[k], y)
            opts[k].step()
            if i >= 2:
                ts[k].append(time.process_time() - t)
    med = {k: statistics.median(v) for k, v in ts.items()}
    return {"plain_cpu_s": med["plain"], "fast_cpu_s": med["fast"], "ratio": med["fast"] / med["plain"],
            "fast_channels_last_cpu_s": med["fast_channels_last"],
            "channels_last_ratio": med["fast_channels_last"] / med["fast"]}


def _rounding(proxy: Arch, *, res: int, batch: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, res, res, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=g)
    ref_net = _net(proxy, res=res, fast=False).double()
    ref = _grad(ref_net, x, y)
    out = {}
    for cl in (False, True):
        fmt = torch.channels_last if cl else torch.contiguous_format
        for fast in (False, True):
            d = _grad(_net(proxy, res=res, fast=fast).to(memory_format=fmt), x.float().to(memory_format=fmt), y)
            out[f"{'channels_last' if cl else 'channels_first'}_{'fast' if fast else 'plain'}"] = \
                float((d - ref).norm() / ref.norm())
    # the yardstick: how far another batch's float64 gradient is (the noise SGD takes in every step)
    x2 = torch.randn(batch, 1, res, res, generator=g, dtype=torch.float64)
    y2 = torch.randint(0, 10, (batch,), generator=g)
    out["float64_another_batch"] = float((_grad(ref_net, x2, y2) - ref).norm() / ref.norm())
    return out


def _epochs(arch: Arch, *, task: str, cfg_name: str, preset: str | None, images: int, pairs: int) -> dict:
    walls: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(pairs):
            for fast in (False, True) if i % 2 == 0 else (True, False):
                cfg, used = load_train_config(TRAIN_CONFIGS / cfg_name, preset=preset, epochs=1, limit_train=images,
                                              limit_heldout=1024, limit_test=1024, fast_convs=fast)
                out = Path(tmp) / f"{i}-{int(fast)}"
                train(arch, data=task, cfg=cfg, out=out, preset=used)
                walls[fast].append(json.loads((out / RESULT).read_text())["train_wall_s"])
    return {"images": images, "plain_wall_s": walls[False], "fast_wall_s": walls[True],
            "ratio_of_medians": statistics.median(walls[True]) / statistics.median(walls[False])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--images", type=int, default=4096)
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    out = {"what": __doc__.split("\n\n")[0], "host": this_cpu(), "torch": torch.__version__, "threads": 1,
           "cases": []}
    for name, task, cfg_name, preset, src, rid in CASES:
        arch = Arch.from_dict(record_arch(SEARCH / src, rid))
        cfg, _ = load_train_config(TRAIN_CONFIGS / cfg_name, preset=preset)
        res = native_resolution(task) or cfg.resolution or 32
        proxy = adapt_arch(arch, resolution=res, channels=1, classes=10, width_mult=cfg.width_mult)
        row = {"case": name, "arch_from": f"benchmarks/search/{src}:{rid}", "resolution": res,
               "width_mult": cfg.width_mult, "batch": cfg.batch_size,
               "step": _step_ratio(proxy, res=res, batch=cfg.batch_size, reps=args.reps),
               "grad_rel_l2_vs_float64": _rounding(proxy, res=res, batch=cfg.batch_size)}
        st = row["step"]
        print(f"{name}: step CPU s fast / plain {st['ratio']:.2f} ({st['fast_cpu_s'] * 1e3:.0f} vs "
              f"{st['plain_cpu_s'] * 1e3:.0f} ms; channels-last {st['channels_last_ratio']:.2f}x fast); "
              f"gradient off float64: "
              + ", ".join(f"{k} {v:.1e}" for k, v in row["grad_rel_l2_vs_float64"].items()), flush=True)
        row["epoch"] = _epochs(arch, task=task, cfg_name=cfg_name, preset=preset, images=args.images,
                               pairs=args.pairs)
        e = row["epoch"]
        print(f"  one epoch of {e['images']} images, wall s: plain {e['plain_wall_s']}, fast {e['fast_wall_s']} "
              f"(ratio of medians {e['ratio_of_medians']:.2f})", flush=True)
        out["cases"].append(row)
        atomic_write_json(OUT, out)


if __name__ == "__main__":
    main()
