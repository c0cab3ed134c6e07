"""The expected-latency penalty against values worked out by hand (see the module docstring)."""

import itertools

import pytest
import torch

from nse_hw.latency import LayerCosts, expected_latency, expected_layer_latency, latency_penalty

COSTS = dict(ops=torch.tensor([2.0, 4.0]), add=0.1, scale=0.2)


def test_identity_layer_by_hand():
    # E = 0.5*2 + 0.5*4 + 0.1*(0.5+0.5) + 0.2*(1 - 0.25) = 3 + 0.1 + 0.15
    e = expected_layer_latency(torch.tensor([0.5, 0.5]), LayerCosts(**COSTS, identity=True))
    assert e.item() == pytest.approx(3.25)


def test_non_empty_layer_by_hand():
    # states {1}: 2, {2}: 4, {1,2}: 2+4+add+scale = 6.3, each with probability 1/3 given non-empty
    e = expected_layer_latency(torch.tensor([0.5, 0.5]), LayerCosts(**COSTS, identity=False))
    assert e.item() == pytest.approx((2 + 4 + 6.3) / 3)


def test_matches_enumeration_with_uneven_probs():
    p = torch.tensor([0.2, 0.7, 0.4])
    t = torch.tensor([1.0, 3.0, 5.0])
    costs = LayerCosts(ops=t, add=0.3, scale=0.05, identity=False)
    num = den = 0.0
    for bits in itertools.product([0, 1], repeat=3):
        if not any(bits):
            continue
        prob = float(torch.prod(torch.where(torch.tensor(bits) == 1, p, 1 - p)))
        n = sum(bits)
        lat = sum(b * float(x) for b, x in zip(bits, t, strict=True)) + 0.3 * (n - 1) + 0.05 * (n > 1)
        num, den = num + prob * lat, den + prob
    assert expected_layer_latency(p, costs).item() == pytest.approx(num / den, rel=1e-6)


def test_gradient_flows_to_probabilities():
    p = torch.tensor([0.3, 0.6], requires_grad=True)
    total = expected_latency([p], [LayerCosts(**COSTS, identity=True)], fixed_ms=10.0)
    total.backward()
    # dE/dp1 = t1 + add + scale*(1-p2) = 2 + 0.1 + 0.2*0.4
    assert p.grad[0].item() == pytest.approx(2.18)
    assert total.item() == pytest.approx(10 + 0.6 + 2.4 + 0.09 + 0.2 * (1 - 0.28))


def test_penalty_kinds():
    e = torch.tensor(90.0)
    assert latency_penalty(e, 80.0).item() == pytest.approx(0.125**2)
    assert latency_penalty(torch.tensor(70.0), 80.0, kind="hinge").item() == 0.0
    with pytest.raises(ValueError):
        latency_penalty(e, 80.0, kind="abs")
