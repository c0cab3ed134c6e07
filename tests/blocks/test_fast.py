"""The small-map depthwise gradients: worked out on paper, and equal to oneDNN's on every geometry."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nse_hw.blocks import build_op
from nse_hw.blocks.fast import (
    CroppedConv2d,
    _span,
    crop_dead_taps,
    depthwise_grads,
    depthwise_input_grad,
    depthwise_weight_grad,
    for_cpu_training,
)
from nse_hw.space import parse_op


def test_span_of_a_tap_is_the_outputs_it_reaches():
    # 'same' 3-tap conv on 2 inputs (pad 1): tap 0 reads o - 1, inside for o = 1 only; tap 2 reads o + 1: o = 0
    assert _span(0, stride=1, dilation=1, pad=1, size_in=2, size_out=2) == (1, 1)
    assert _span(1, stride=1, dilation=1, pad=1, size_in=2, size_out=2) == (0, 1)
    assert _span(2, stride=1, dilation=1, pad=1, size_in=2, size_out=2) == (0, 0)
    # dilation 3 on 2 inputs, pad 3: the outer taps read o -/+ 3, never inside: an empty span
    first, last = _span(0, stride=1, dilation=3, pad=3, size_in=2, size_out=2)
    assert last < first
    # stride 2 on 6 inputs, 3 outputs, pad 1: tap 0 reads 2o - 1 (inside for o = 1, 2)
    assert _span(0, stride=2, dilation=1, pad=1, size_in=6, size_out=3) == (1, 2)


def test_weight_grad_of_ones_counts_the_pairs_each_tap_makes():
    x = torch.ones(1, 1, 2, 2)
    g = torch.ones(1, 1, 2, 2)
    gw = depthwise_weight_grad(x, g, (3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    assert gw.tolist() == [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]]


def test_input_grad_of_ones_sums_the_weights_each_input_meets():
    w = torch.arange(9.0).view(1, 1, 3, 3)
    gx = depthwise_input_grad(torch.ones(1, 1, 2, 2), w, torch.empty(1, 1, 2, 2), stride=(1, 1), padding=(1, 1),
                              dilation=(1, 1))
    # output (r, c) reads input (r + i - 1, c + j - 1) by tap (i, j) = 3i + j; so input (0, 0) meets output (0, 0)
    # by tap 4, (0, 1) by 3, (1, 0) by 1, (1, 1) by 0: 8; input (0, 1): 5 + 4 + 2 + 1 = 12; (1, 0): 7 + 6 + 4 + 3
    assert gx.tolist() == [[[[8, 12], [20, 24]]]]


@pytest.mark.parametrize("hw,kernel,stride,dilation,channels_last", list(itertools.product(
    [(2, 2), (3, 5), (6, 6), (7, 4)], [(1, 1), (3, 3), (5, 3), (7, 7)], [1, 2], [1, 2, 3], [False, True])))
def test_both_grads_are_onednns(hw, kernel, stride, dilation, channels_last):
    torch.manual_seed(0)
    pad = tuple(dilation * (k - 1) // 2 for k in kernel)
    x = torch.randn(3, 5, *hw, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(5, 1, *kernel, dtype=torch.float64)
    g = torch.randn_like(F.conv2d(x, w, None, stride, pad, dilation, 5))
    gx, gw, _ = torch.ops.aten.convolution_backward(g, x, w, None, [stride] * 2, list(pad), [dilation] * 2, False,
                                                    [0, 0], 5, [True, True, False])
    geometry = {"stride": (stride, stride), "padding": pad, "dilation": (dilation, dilation)}
    torch.testing.assert_close(depthwise_weight_grad(x, g, kernel, **geometry), gw, rtol=0, atol=1e-12)
    own_gx = depthwise_input_grad(g, w, x, **geometry)
    torch.testing.assert_close(own_gx, gx, rtol=0, atol=1e-12)
    assert own_gx.stride() == x.stride()


def _dw(chs=8, k=3, stride=1, dilation=1, bias=False):
    return nn.Conv2d(chs, chs, k, stride, dilation * (k - 1) // 2, dilation=dilation, groups=chs, bias=bias)


@pytest.mark.parametrize("conv,kernel,hw,expected", [
    (_dw(k=3), (3, 3), (6, 6), (False, False)),          # fits its map: oneDNN's
    (_dw(k=5), (5, 5), (3, 3), (True, False)),           # reaches beyond a 3x3 map
    (_dw(k=7, stride=2), (7, 7), (3, 3), (True, False)),
    (_dw(k=11, stride=2), (11, 11), (12, 12), (False, False)),
    (_dw(k=3, dilation=3), (3, 3), (12, 12), (True, False)),   # dilated, stride 1: own weight grad only
    (_dw(k=3, stride=2, dilation=2), (3, 3), (12, 12), (True, True)),
    (_dw(k=3, dilation=3), (1, 1), (2, 2), (False, False)),    # cropped to one tap: nothing dilated is left
    (_dw(k=5, bias=True), (5, 5), (3, 3), (False, False)),
    (nn.Conv2d(8, 16, 5, 1, 2, groups=8, bias=False), (5, 5), (3, 3), (False, False)),  # grouped, not depthwise
    (nn.Conv2d(8, 8, 5, 1, 2, bias=False), (5, 5), (3, 3), (False, False)),
])
def test_which_convs_compute_their_own_grads(conv, kernel, hw, expected):
    assert depthwise_grads(conv, kernel, hw) == expected


def test_a_cropped_single_tap_drops_its_dilation_and_changes_nothing():
    torch.manual_seed(0)
    ref = _dw(chs=16, k=3, dilation=3)
    fast = _dw(chs=16, k=3, dilation=3)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(4, 16, 2, 2)
    assert crop_dead_taps(fast, lambda: fast(x)) == 1
    assert type(fast) is CroppedConv2d and fast.crop == (1, 1) and fast.own_grads == (False, False)
    torch.testing.assert_close(fast(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("stride,dilation,hw", [(1, 1, 3), (2, 2, 12), (1, 2, 6)])
def test_a_conv_with_own_grads_trains_as_before(stride, dilation, hw):
    torch.manual_seed(0)
    ref, fast = _dw(chs=16, k=5, stride=stride, dilation=dilation), _dw(chs=16, k=5, stride=stride, dilation=dilation)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(4, 16, hw, hw).to(memory_format=torch.channels_last)
    assert crop_dead_taps(fast, lambda: fast(x), depthwise_grad=True) == 1
    assert fast.own_grads[0]
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_fast = ref(xr), fast(xf)
    torch.testing.assert_close(out_fast, out_ref, rtol=0, atol=0)  # the forward is oneDNN's
    out_ref.square().sum().backward()
    out_fast.square().sum().backward()
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(xf.grad, xr.grad, rtol=1e-5, atol=1e-5)
    assert set(fast.state_dict()) == set(ref.state_dict())


def _small_net():
    return nn.Sequential(build_op(parse_op("mb_k5_e3"), 8, 16, 1), build_op(parse_op("mb_k3_e3_d2"), 16, 16, 2),
                         build_op(parse_op("mb_k7_e3"), 16, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 4))


def test_a_net_made_for_cpu_training_takes_the_plain_nets_steps():
    torch.manual_seed(0)
    plain, fast = _small_net(), _small_net()
    fast.load_state_dict(plain.state_dict())
    for_cpu_training(fast, channels=8, resolution=6)
    convs = [m for m in fast.modules() if isinstance(m, CroppedConv2d)]
    # k5 on 6x6 fits its map (left alone); k3 d2 stride 2: both own; k7 on 3x3 (cropped to 5): own weight grad
    assert [(m.own_grads, m.crop) for m in convs] == [((True, True), (0, 0)), ((True, False), (1, 1))]
    assert fast.training and set(fast.state_dict()) == set(plain.state_dict())
    x, y = torch.randn(16, 8, 6, 6), torch.randint(0, 4, (16,))
    for net in (plain, fast):
        opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    for (n, a), b in zip(plain.state_dict().items(), fast.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=n)
    reloaded = _small_net()
    reloaded.load_state_dict(fast.state_dict())  # a plain net (as export builds it) takes the weights as they are
    torch.testing.assert_close(reloaded.eval()(x), fast.eval()(x), rtol=1e-5, atol=1e-6)
