import math

import pytest

from nse_hw.latency.siblings import nearest, residuals

A = "mb_k3_e6|in=56x56x24|out=40|s=2"
B = "mb_k3_e6|in=112x112x24|out=40|s=2"
OTHER_CH = "mb_k3_e6|in=40x40x32|out=40|s=2"
OTHER_OP = "mb_k5_e6|in=40x40x24|out=40|s=2"
OTHER_S = "mb_k3_e6|in=40x40x24|out=40|s=1"


def test_residuals_are_measured_over_fitted_for_op_keys_only():
    got = residuals([A, "add|in=56x56x24", B], [2.0, 1.0, 3.0], [1.6, 1.0, 1.0])
    assert got == {A: 1.25, B: 3.0}  # 2.0 / 1.6 = 1.25; the add is no op
    assert residuals([A], [1.0], [3.0]) == {A: 0.33333}  # five significant digits


def test_the_sibling_has_the_same_op_stride_and_channels_and_the_nearest_height():
    known = {A: 1.2, B: 0.8, OTHER_CH: 5.0, OTHER_OP: 5.0, OTHER_S: 5.0}
    # 40 px: |log 40 - log 56| = 0.336 < |log 40 - log 112| = 1.030 -> A
    assert nearest("mb_k3_e6|in=40x40x24|out=40|s=2", known) == (A, 1.2)
    # 90 px: |log 90 - log 56| = 0.474 > |log 90 - log 112| = 0.219 -> B
    assert nearest("mb_k3_e6|in=90x90x24|out=40|s=2", known) == (B, 0.8)
    assert math.isclose(abs(math.log(90 / 112)), 0.2187, abs_tol=1e-4)


@pytest.mark.parametrize("key", [
    "mb_k3_e6|in=40x40x24|out=48|s=2",   # other output channels
    "mb_k3_e6|in=40x40x16|out=40|s=2",   # other input channels
    "mb_k3_e6|in=40x40x24|out=24|s=1",   # other stride (and channels)
    "mb_k7_e6|in=40x40x24|out=40|s=2",   # an op no fitted key has
    "add|in=40x40x24",                   # not an op
])
def test_no_sibling_no_correction(key):
    assert nearest(key, {A: 1.2, B: 0.8}) is None


def test_ties_go_to_the_key_that_sorts_first():
    # the height alone places a key: two fitted widths at the same height are exactly as near
    lo, hi = "mb_k3_e6|in=50x50x24|out=40|s=2", "mb_k3_e6|in=50x70x24|out=40|s=2"
    assert lo < hi
    assert nearest("mb_k3_e6|in=60x60x24|out=40|s=2", {hi: 2.0, lo: 1.0}) == (lo, 1.0)
