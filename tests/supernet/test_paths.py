"""Path sampling: a layer that cannot be empty draws from the Bernoulli conditioned on at least one op on."""

from collections import Counter

import numpy as np
import pytest

from nse_hw.supernet.paths import _draw, draw_nonempty


def test_conditioned_draw_on_paper():
    # p = (1/2, 1/2) given "not empty": {0}, {1} and {0, 1} each have probability (1/4) / (3/4) = 1/3
    rng = np.random.default_rng(0)
    n = 30000
    c = Counter(tuple(np.array([3, 5])[r]) for r in draw_nonempty(np.array([0.5, 0.5]), n, rng))
    assert set(c) == {(3,), (5,), (3, 5)}
    for k in c:
        assert c[k] / n == pytest.approx(1 / 3, abs=0.015)


def test_tiny_probabilities_do_not_hang_and_keep_their_ratios():
    # p = (1e-12, 1e-12, 2e-12): rejection would need ~2.5e11 tries; given one op on, it is op i with odds 1:1:2
    rng = np.random.default_rng(1)
    p, alive = np.array([1e-12, 1e-12, 2e-12]), np.ones(3, dtype=bool)
    c = Counter(_draw(p, alive, True, rng) for _ in range(8000))
    assert set(c) <= {(0,), (1,), (2,)}
    assert c[(2,)] / 8000 == pytest.approx(0.5, abs=0.03)
    assert draw_nonempty(np.zeros(2), 3, rng).tolist() == [[True, False]] * 3  # all zero: the first op, no hang
    rows = draw_nonempty(np.array([1e-17, 3e-17, 0.0]), 20000, rng)  # many rows at once: one op, odds 1:3:0
    assert (rows.sum(1) == 1).all() and not rows[:, 2].any() and rows[:, 1].mean() == pytest.approx(0.75, abs=0.015)
