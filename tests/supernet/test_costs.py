"""The space latency model against predict(), enumeration and brute force."""

import itertools

import numpy as np
import pytest
import torch
from fixtures.fake_table import fake_table

from nse_hw.errors import LatencyMiss
from nse_hw.latency import predict
from nse_hw.supernet import SpaceLatency

CAL = {"slope": 1.1, "intercept_ms": 0.2}


@pytest.fixture(scope="module")
def tiny_model(tiny_space):
    return SpaceLatency(tiny_space, fake_table(tiny_space, calibration=CAL))


def test_arch_ms_equals_predict(tiny_space, tiny_model, rng):
    for _ in range(20):
        arch = tiny_space.sample(rng)
        assert tiny_model.arch_ms(tiny_space.choices_of(arch)) == pytest.approx(
            predict(arch, tiny_model.table).total_ms, rel=1e-9)


def test_in_op_table_matches_predict(tiny_space, rng):
    """A table whose identity-shape ops carry their residual add (OFA's Note10): the search's model prices those
    layers without add keys, exactly as predict() does."""
    table = fake_table(tiny_space, calibration=CAL)
    table.meta["residual_add"] = "in-op"
    model = SpaceLatency(tiny_space, table)
    plain = SpaceLatency(tiny_space, fake_table(tiny_space, calibration=CAL))
    cheaper = 0
    for _ in range(20):
        arch = tiny_space.sample(rng)
        got = model.arch_ms(tiny_space.choices_of(arch))
        assert got == pytest.approx(predict(arch, table).total_ms, rel=1e-9)
        cheaper += got < plain.arch_ms(tiny_space.choices_of(arch))
    assert cheaper == 20  # the fixed identity layer's add is never charged


def test_batch_ms_equals_arch_ms(tiny_space, tiny_model, rng):
    subs = [tiny_space.pool[:4]] * 4
    bits = [rng.random((30, 4)) < 0.5 for _ in subs]
    for b in (bits[0], bits[2]):  # shape-changing layers need an op
        b[~b.any(1), 0] = True
    got = tiny_model.batch_ms(bits, subs)
    for r in range(30):
        choices = [tuple(o for o, on in zip(s, b[r], strict=True) if on) for s, b in zip(subs, bits, strict=True)]
        assert got[r] == pytest.approx(tiny_model.arch_ms(choices), rel=1e-9)


def _per_layer_extremes(space, model):
    """Brute force: each layer's every subset of the pool, the others fixed (latency is additive per layer)."""
    base = [() if space.positions[j].skippable else (space.pool[0],) for j in space.searchable]
    lo = hi = model.arch_ms(base)
    for j in range(len(base)):
        subsets = [c for n in range(len(space.pool) + 1) for c in itertools.combinations(space.pool, n)
                   if c or space.positions[space.searchable[j]].skippable]
        lat = [model.arch_ms(base[:j] + [c] + base[j + 1:]) for c in subsets]
        lo += min(lat) - model.arch_ms(base)
        hi += max(lat) - model.arch_ms(base)
    return lo, hi


def test_min_max_are_exact(tiny_space, tiny_model):
    lo, hi = _per_layer_extremes(tiny_space, tiny_model)
    assert tiny_model.min_ms() == pytest.approx(lo) and tiny_model.max_ms() == pytest.approx(hi)


def test_feasible_ops(tiny_space, tiny_model):
    budget = tiny_model.min_ms() + 0.25 * (tiny_model.max_ms() - tiny_model.min_ms()) / 4
    feasible = tiny_model.feasible_ops(budget)
    cheapest = [() if tiny_space.positions[j].skippable else
                (min(tiny_space.pool, key=lambda o, j=j: tiny_model.layers[i].ops[o]),)
                for i, j in enumerate(tiny_space.searchable)]
    n_out = 0
    for i, ok in enumerate(feasible):
        for op in tiny_space.pool:
            ms = tiny_model.arch_ms(cheapest[:i] + [(op,)] + cheapest[i + 1:])
            assert (ms <= budget) == (op in ok)
            n_out += op not in ok
    assert n_out > 0  # the budget is tight enough to retire something


def test_expected_matches_enumeration(tiny_space, tiny_model):
    subs = [tiny_space.pool[:2], tiny_space.pool[2:4], tiny_space.pool[1:3], tiny_space.pool[3:5]]
    probs = torch.tensor([[0.3, 0.8], [0.6, 0.1], [0.5, 0.5], [0.2, 0.9]])
    got = tiny_model.expected_ms(probs, tiny_model.cost_matrix(subs, 2)).item()
    ref = tiny_model.expected_ms_reference(probs, tiny_model.layer_costs(subs, 2)).item()
    assert got == pytest.approx(ref, rel=1e-6)
    per_layer = []
    for j, (s, p) in enumerate(zip(subs, probs.tolist(), strict=True)):
        states = []
        for bits in itertools.product([0, 1], repeat=2):
            if not any(bits) and not tiny_space.positions[tiny_space.searchable[j]].skippable:
                continue
            states.append((np.prod([pi if b else 1 - pi for b, pi in zip(bits, p, strict=True)]),
                           tuple(o for o, b in zip(s, bits, strict=True) if b)))
        per_layer.append(states)
    num = den = 0.0
    for combo in itertools.product(*per_layer):
        w = np.prod([c[0] for c in combo])
        num += w * tiny_model.arch_ms([c[1] for c in combo])
        den += w
    assert got == pytest.approx(num / den, rel=1e-5)


def test_missing_keys_are_named(tiny_space):
    table = fake_table(tiny_space)
    key = next(k for k in table.entries if k.startswith("mb_k7_e3"))
    del table.entries[key]
    with pytest.raises(LatencyMiss, match=r"mb_k7_e3\|in="):
        SpaceLatency(tiny_space, table)


def test_alpha_for_target(tiny_space, tiny_model):
    subs = [tiny_space.pool[:3], tiny_space.pool[2:5], tiny_space.pool[1:4], tiny_space.pool[3:6]]
    costs = tiny_model.cost_matrix(subs, 3)
    target = tiny_model.min_ms() + 0.2 * (tiny_model.max_ms() - tiny_model.min_ms()) / 4
    c = tiny_model.alpha_for_target(subs, target, p_eps=1e-3)
    p = 1e-3 + (1 - 2e-3) * torch.sigmoid(torch.full((4, 3), c))
    assert tiny_model.expected_ms(p, costs).item() == pytest.approx(target, rel=1e-4)
    assert tiny_model.alpha_for_target(subs, 1e6, p_eps=1e-3) == pytest.approx(8.0, abs=1e-3)  # out of reach


def test_expected_is_finite_when_a_probability_is_exactly_one(tiny_space, tiny_model):
    """A float32 sigmoid of a logit above ~17.3 is exactly 1: q = 0, and none / q was 0/0 = NaN."""
    subs = [tiny_space.pool[:2]] * 4
    costs = tiny_model.cost_matrix(subs, 2)
    p = torch.tensor([[1.0, 0.5]] * 4)
    got = tiny_model.expected_ms(p, costs).item()
    ref = tiny_model.expected_ms(torch.tensor([[1.0 - 1e-12, 0.5]] * 4, dtype=torch.float64), costs).item()
    assert np.isfinite(got) and got == pytest.approx(ref, rel=1e-6)
    assert tiny_model.expected_ms_reference(p, tiny_model.layer_costs(subs, 2)).item() == pytest.approx(got, rel=1e-6)


def test_exclusive_prod_by_hand():
    from nse_hw.latency import exclusive_prod

    q = torch.tensor([[2.0, 3.0, 5.0], [0.0, 0.5, 4.0]])
    assert exclusive_prod(q).tolist() == [[15.0, 10.0, 6.0], [2.0, 0.0, 0.0]]


def test_stable_at_least_one_by_hand(tiny_space, tiny_model):
    """Layer 0 of tiny may not be empty. With p = (1e-20, 3e-20) its P(N >= 1) is 4e-20: 1 - prod(1 - p) rounds
    it to 0 (0/0), the stable form keeps it, and the layer costs (c1 + 3 c2) / 4, one op drawn by its odds."""
    subs = [tiny_space.pool[:2]] * 4
    costs = tiny_model.cost_matrix(subs, 2)
    half = torch.full((4, 2), 0.5, dtype=torch.float64)
    assert tiny_model.expected_ms(half, costs, stable=True).item() == pytest.approx(
        tiny_model.expected_ms(half, costs).item(), rel=1e-12)
    p = half.clone()
    p[0] = torch.tensor([1e-20, 3e-20], dtype=torch.float64)
    assert not np.isfinite(tiny_model.expected_ms(p, costs).item())
    c1, c2 = costs.ops[0].tolist()
    q = half.clone()
    q[0] = torch.tensor([1.0, 0.0], dtype=torch.float64)  # layer 0 as op 1 alone ...
    one = tiny_model.expected_ms(q, costs).item()
    want = one + tiny_model.slope * ((c1 + 3 * c2) / 4 - c1)  # ... then priced at the odds-weighted cost
    assert tiny_model.expected_ms(p, costs, stable=True).item() == pytest.approx(want, rel=1e-9)
