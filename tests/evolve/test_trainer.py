"""Weight-step path sampling: 'uniform' (every live op on with path_prob) and 'budget' (tilted to the target); an
epoch's pruning, logged once."""

import dataclasses
import itertools
import logging

import numpy as np
import pytest
import torch
from fixtures.fake_table import fake_table

from nse_hw.evolve.trainer import RoundTrainer
from nse_hw.supernet import Proxy, SpaceLatency, SuperNet


def _trainer(space, sampling, target_ms):
    subs = [tuple(space.pool[(j + i) % len(space.pool)] for i in range(3)) for j in range(len(space.searchable))]
    torch.manual_seed(0)
    net = SuperNet(space, subs, proxy=Proxy(16, 1, 4, 0.5))
    model = SpaceLatency(space, fake_table(space))
    return RoundTrainer.build(net, model, target_ms=target_ms, optimizer="adam", lr=1e-3, momentum=0.9,
                              weight_decay=0.0, arch_lr=0.01, arch_betas=(0.0, 0.999), total_steps=10,
                              path_prob=0.5, arch_every=2, penalty="squared", lam=1.0, prune_threshold=-9.0,
                              device=torch.device("cpu"), memory_format=torch.contiguous_format,
                              path_sampling=sampling), model


def _mean_ms(tr, model, n=3000):
    rng = np.random.default_rng(0)
    sizes = [len(s) for s in tr.net.subspaces]
    bits = [np.zeros((n, k), dtype=bool) for k in sizes]
    for r in range(n):
        for j, layer in enumerate(tr.weight_path(rng)):
            bits[j][r, list(layer)] = True
    return float(model.batch_ms(bits, tr.net.subspaces).mean())


def test_uniform_paths_ignore_the_target(tiny_space):
    tr, _ = _trainer(tiny_space, "uniform", target_ms=1.0)
    assert np.array_equal(tr.path_probs(), np.where(tr.net.alive.numpy(), 0.5, 0.0))


def test_budget_paths_have_the_targets_latency(tiny_space):
    tr, model = _trainer(tiny_space, "uniform", target_ms=1.0)
    uniform_ms = _mean_ms(tr, model)
    target = 0.6 * uniform_ms  # lighter paths than p = 0.5 gives
    tr, model = _trainer(tiny_space, "budget", target_ms=target)
    p = tr.path_probs()
    exp = float(model.expected_ms(torch.tensor(p), model.cost_matrix(tr.net.subspaces, p.shape[1])))
    assert exp == pytest.approx(target, rel=1e-6)  # the bisection's target, exactly
    assert _mean_ms(tr, model) == pytest.approx(target, rel=0.03)  # and what the drawn paths cost on average
    assert p[tr.net.alive.numpy()].max() < 0.5
    with torch.no_grad():  # a pruned op: the tilt is found again for the new live set
        tr.net.alive[1, 0] = False
    p2 = tr.path_probs()
    assert p2[1, 0] == 0 and not np.array_equal(p, p2)


def test_an_epoch_logs_its_pruned_ops_in_one_line(tiny_space, caplog):
    tr, _ = _trainer(tiny_space, "uniform", target_ms=1.0)
    tr = dataclasses.replace(tr, prune_threshold=100.0)  # every op is below it: all but what a layer must keep go
    alive = int(tr.net.alive.sum())
    torch.manual_seed(0)
    batch = (torch.randn(4, 1, 16, 16), torch.randint(0, 4, (4,)))
    with caplog.at_level(logging.INFO, logger="nse_hw"):
        stats = tr.epoch([batch] * 4, itertools.repeat(batch), rng=np.random.default_rng(0), step=0, max_steps=None,
                         arch=True, desc="epoch")
    gone = alive - int(tr.net.alive.sum())
    lines = [r.getMessage() for r in caplog.records if "pruned" in r.getMessage()]
    assert gone > 1 and stats["pruned"] == gone
    assert len(lines) == 1 and lines[0].startswith(f"pruned {gone} (layer, op) pairs this epoch: layer ")
