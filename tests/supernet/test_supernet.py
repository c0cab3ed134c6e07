"""The supernet: paths compute what their architecture alone computes, α estimator, pruning, BN recalibration."""

import numpy as np
import pytest
import torch

from nse_hw.blocks import build_network
from nse_hw.blocks.fast import crop_dead_taps
from nse_hw.space import adapt_arch, format_layer
from nse_hw.supernet import Proxy, SuperNet, TwoPath, recalibrate_bn, sample_two_path, subset_prob, uniform_path

PROXY = Proxy(resolution=16, channels=1, classes=4, width_mult=0.5)


def _net(space, k=3, seed=0, zero_init_last_bn=False, **kw):
    subs = [tuple(space.pool[(j + i) % len(space.pool)] for i in range(k)) for j in range(len(space.searchable))]
    torch.manual_seed(seed)
    return SuperNet(space, subs, proxy=PROXY, zero_init_last_bn=zero_init_last_bn, **kw)


def _standalone_state(net, path):
    """The supernet's weights renamed to the plain network of ``path`` (branches in path order)."""
    out, j = {}, 0
    for i, layer in enumerate(net.layers):
        prefix = f"layers.{i}."
        if hasattr(layer, "forward_pair"):
            for k, b in enumerate(path[j]):
                for n, t in layer.branches[b].state_dict().items():
                    out[f"{prefix}branches.{k}.{n}"] = t
            j += 1
        else:
            out.update({prefix + n: t for n, t in layer.state_dict().items()})
    for part in ("stem", "head", "classifier"):
        out.update({f"{part}.{n}": t for n, t in getattr(net, part).state_dict().items()})
    return out


def test_path_computes_its_standalone_architecture(tiny_space):
    net = _net(tiny_space).eval()
    path = ((0, 2), (), (1,), (0, 1, 2))
    arch = net.export(path)
    assert arch.input == tiny_space.input and arch.classes == tiny_space.classes  # the DEPLOYMENT arch
    assert [format_layer(c) for c in tiny_space.choices_of(arch)] == [format_layer(c) for c in net.choices(path)]
    proxy = adapt_arch(arch, resolution=16, channels=1, classes=4, width_mult=0.5)
    alone = build_network(proxy).eval()
    alone.load_state_dict(_standalone_state(net, path))
    x = torch.randn(3, 1, 16, 16)
    torch.testing.assert_close(net(x, path), alone(x))


def test_probs_clamped_masked_and_pruning(tiny_space):
    net = _net(tiny_space, protected=[{tiny_space.pool[0]}, set(), set(), set()])
    with torch.no_grad():
        net.alpha.fill_(-50.0)
        net.alpha[0, 1] = 3.0
    p = net.probs().detach()
    assert float(p.min()) >= 0 and float(p[net.alive].min()) >= net.p_eps * 0.99
    pruned = net.prune(-2.0)
    alive = net.alive
    assert alive[0, 0] and alive[0, 1] and not alive[0, 2]  # protected op kept; high α kept
    assert not net.skippable[0] and net.skippable[1]
    assert int(alive[1].sum()) == 0  # a skippable layer may lose every op
    assert int(alive[2].sum()) == 2  # a layer that changes shape keeps two ops (the official code's floor)
    assert (0, tiny_space.pool[2]) in pruned
    assert float(net.probs().detach()[1].sum()) == 0.0


@pytest.mark.parametrize("keep_fixed, survivors", [(2, [False, True, True]), (1, [False, False, True]),
                                                   (3, [True, True, True])])
def test_prune_spares_the_best_candidates_up_to_the_floor(tiny_space, keep_fixed, survivors):
    # layer 0 cannot be skipped; α = (-5, -3, 1) under threshold -2: ops 0 and 1 are candidates and op 2
    # survives, so a floor of 2 spares the better candidate (op 1), a floor of 1 spares none
    net = _net(tiny_space)
    with torch.no_grad():
        net.alpha.fill_(5.0)
        net.alpha[0] = torch.tensor([-5.0, -3.0, 1.0])
    pruned = net.prune(-2.0, keep_fixed=keep_fixed)
    assert net.alive[0].tolist() == survivors
    assert pruned == [(0, net.subspaces[0][i]) for i, s in enumerate(survivors) if not s]


def test_two_path_forwards_the_chosen_subset_and_grads_reach_both(tiny_space):
    net = _net(tiny_space).train()
    with torch.no_grad():
        net.alpha.copy_(torch.randn_like(net.alpha))
    tp = TwoPath(pairs=(((0,), (0, 1)), ((), (2,)), ((1,), (1,)), ((0, 2), (1,))), choice=(1, 0, 0, 1))
    chosen = tuple(p[c] for p, c in zip(tp.pairs, tp.choice, strict=True))
    x = torch.randn(4, 1, 16, 16)
    torch.manual_seed(0)
    out_two = net(x, tp)
    torch.testing.assert_close(out_two, net(x, chosen))  # same batch statistics, same values
    out_two.sum().backward()
    g = net.alpha.grad.abs() > 1e-6  # (common factors cancel up to rounding)
    # the renormalised pair probability depends only on the ops that differ between the two subsets
    assert g[0].tolist() == [False, True, False]
    assert g[1].tolist() == [False, False, True]
    assert g[2].tolist() == [False, False, False]
    assert g[3].tolist() == [True, True, True]


def test_two_path_sampling(tiny_space):
    net = _net(tiny_space)
    probs = np.array([[0.9, 0.2, 0.5]] * 4)
    alive = net.alive.numpy()
    nonempty = [not s for s in net.skippable]
    rng = np.random.default_rng(0)
    picks, n = 0, 3000
    for _ in range(n):
        tp = sample_two_path(probs, alive, nonempty, rng)
        for (a, b), ne in zip(tp.pairs, nonempty, strict=True):
            assert a != b and (a or not ne) and (b or not ne)
        a, b = tp.pairs[0]
        pa, pb = subset_prob(probs[0], alive[0], a), subset_prob(probs[0], alive[0], b)
        picks += (tp.choice[0] == 0) - pa / (pa + pb)
    assert abs(picks) / n < 0.03  # the choice follows the renormalised probabilities


def test_uniform_paths_respect_shape_changing_layers(tiny_space):
    net = _net(tiny_space)
    rng = np.random.default_rng(1)
    nonempty = [not s for s in net.skippable]
    counts = np.zeros(net.alive.shape)
    for _ in range(2000):
        path = uniform_path(net.alive.numpy(), nonempty, rng)
        for j, s in enumerate(path):
            assert s or not nonempty[j]
            counts[j, list(s)] += 1
    assert np.allclose(counts[1] / 2000, 0.5, atol=0.04)  # skippable layer: exactly Bernoulli(0.5)


def test_bn_recalibration_averages_the_path_statistics(tiny_space):
    net = _net(tiny_space)
    path = ((0,), (1,), (2,), ())
    xs = [torch.randn(8, 1, 16, 16) * 2 + 1 for _ in range(3)]
    assert recalibrate_bn(net, path, iter(xs)) == 3
    assert not net.training
    stem_bn = net.stem[1]
    with torch.no_grad():
        conv = torch.cat([net.stem[0](x) for x in xs])
    torch.testing.assert_close(stem_bn.running_mean, conv.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("depthwise_grad", [False, True])
def test_crop_dead_taps_is_exact(nse27, depthwise_grad):
    subs = [(nse27.pool[11], nse27.pool[14], nse27.pool[20], nse27.pool[26])] * len(nse27.searchable)
    torch.manual_seed(0)
    ref = SuperNet(nse27, subs, proxy=Proxy(32, 1, 10, 0.25))
    fast = SuperNet(nse27, subs, proxy=Proxy(32, 1, 10, 0.25))
    fast.load_state_dict(ref.state_dict())
    full = tuple(tuple(range(4)) for _ in subs)
    assert crop_dead_taps(fast, lambda: fast.eval()(torch.zeros(2, 1, 32, 32), full),
                          depthwise_grad=depthwise_grad) > 10
    own = sum(getattr(m, "own_grads", (False, False))[0] for m in fast.modules())
    assert (own > 5) if depthwise_grad else own == 0
    ref.eval(), fast.eval()  # (train-mode BN on 1x1 maps would amplify rounding differences)
    x = torch.randn(4, 1, 32, 32)
    path = tuple((i % 4, (i + 1) % 4) for i in range(len(subs)))
    out_ref, out_fast = ref(x, path), fast(x, path)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-4, atol=1e-4)
    out_ref.square().sum().backward()
    out_fast.square().sum().backward()
    for (n, a), b in zip(ref.named_parameters(), fast.parameters(), strict=True):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-4, msg=n)
    assert set(fast.state_dict()) == set(ref.state_dict())


def test_export_most_likely(tiny_space):
    net = _net(tiny_space)
    with torch.no_grad():
        net.alpha.fill_(-3.0)
        net.alpha[1, 2] = 2.0
    arch = net.export()
    ch = tiny_space.choices_of(arch)
    assert ch[1] == (net.subspaces[1][2],) and ch[3] == ()  # skippable layer, all p < 0.5: skip
    assert len(ch[0]) == 1 and len(ch[2]) == 1  # shape-changing layers keep their most likely op


def test_zero_init_starts_identity_layers_at_the_identity(tiny_space):
    net = _net(tiny_space, zero_init_last_bn=True).eval()
    x = torch.randn(2, 8, 4, 4)
    layer = net.layers[2]  # stride-1, 8 -> 8 channels (proxy widths): the identity is a term
    assert layer.identity
    torch.testing.assert_close(layer(x, (0, 1)), x / 3)


@pytest.mark.parametrize("bad", [[(), ()], []])
def test_wrong_subspace_count(tiny_space, bad):
    with pytest.raises(ValueError, match="one subspace per searchable layer"):
        SuperNet(tiny_space, bad, proxy=PROXY)
