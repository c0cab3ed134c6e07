"""NSE building blocks: budgets, Pareto fronts, keep/retire/refill, in-window sampling, uniform baseline sampling."""

import numpy as np
import pytest
import torch
from fixtures.fake_table import fake_table

from nse_hw.errors import NseError
from nse_hw.evolve import Candidate, Subspaces, check_budget, kept_ops, pareto_front, parse_latency
from nse_hw.evolve.budget import table_for_device
from nse_hw.evolve.sampling import find_tilt, sample_in_window
from nse_hw.latency import predict
from nse_hw.space import parse_op
from nse_hw.supernet import SpaceLatency


@pytest.mark.parametrize("text,ms", [("80ms", 80.0), ("80 ms", 80.0), ("0.08s", 80.0), ("80", 80.0),
                                     (" 12.5ms ", 12.5), ("1e2ms", 100.0)])
def test_parse_latency(text, ms):
    assert parse_latency(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["fast", "80 us", "-5ms", "0", "0s", "ms", "80msms", "nan"])
def test_parse_latency_rejects(text):
    with pytest.raises(ValueError, match="latency"):
        parse_latency(text)


def test_unknown_device_names_the_profile_command():
    with pytest.raises(NseError, match="nse-hw profile --device nosuchphone"):
        table_for_device("nosuchphone")


def test_budget_checks(tiny_space, caplog):
    table = fake_table(tiny_space)
    model = SpaceLatency(tiny_space, table)
    with pytest.raises(NseError, match=rf"below the fastest.*{model.min_ms():.3f} ms.*{model.max_ms():.3f} ms"):
        check_budget(tiny_space, table, model.min_ms() * 0.99)
    _, b = check_budget(tiny_space, table, model.max_ms() * 2)
    assert "above the slowest" in caplog.text and b.effective_ms == pytest.approx(model.max_ms())


def _c(ms, acc, kind="window", layers=None):
    return Candidate(layers or [()], ms, acc, kind)


def test_pareto_front_by_hand():
    cands = [_c(10, 0.5), _c(12, 0.7), _c(11, 0.4), _c(15, 0.7), _c(9, 0.3), _c(14, 0.9), _c(12, 0.7)]
    assert pareto_front(cands) == [4, 0, 1, 5]  # fastest first; dominated and duplicate points dropped


def test_keep_retire_refill():
    o = [parse_op(t) for t in ("mb_k3_e1", "mb_k3_e3", "mb_k5_e3", "mb_k7_e3", "rec_k5_e2", "mb_k3_e3_d2")]
    subs = Subspaces(current=[[o[0], o[1], o[2]], [o[3], o[4]]], queue=[[o[3], o[4], o[5]], [o[0]]])
    front = [_c(1, 0.5, layers=[(o[0],), ()]), _c(2, 0.6, "extra", layers=[(o[1],), (o[3],)]),
             _c(3, 0.8, "previous", layers=[(o[2], o[0]), (o[4],)])]
    keep = kept_ops(front, 2)
    assert keep == [{o[0], o[2]}, {o[4]}]  # extras never kept
    nxt = subs.refill(keep, 3)
    assert nxt.current == [[o[0], o[2], o[3]], [o[4], o[0]]]  # kept ops in order, then the queue's head
    assert nxt.queue == [[o[4], o[5]], []]
    assert Subspaces.from_dict(nxt.to_dict()) == nxt


@pytest.fixture(scope="module")
def nse27_model(nse27):
    return SpaceLatency(nse27, fake_table(nse27))


def test_in_window_sampling_tilts_and_matches_predict(nse27, nse27_model):
    subs = [tuple(nse27.pool[i] for i in range(j % 3, 27, 6)) for j in range(len(nse27.searchable))]
    k = max(len(s) for s in subs)
    alive = np.array([[i < len(s) for i in range(k)] for s in subs])
    probs = np.where(alive, 0.5, 0.0)
    nonempty = [not nse27.positions[j].skippable for j in nse27.searchable]
    window = (68.0, 80.0)
    beta, tilted = find_tilt(nse27_model, subs, probs, alive, window)
    exp = nse27_model.expected_ms(torch.tensor(tilted, dtype=torch.float32), nse27_model.cost_matrix(subs, k))
    assert beta > 0 and float(exp) == pytest.approx(74.0, rel=0.01)  # α=0 is far too slow: tilted to the centre
    got = sample_in_window(nse27_model, subs, probs, alive, nonempty, window, 25, np.random.default_rng(0),
                           max_draws=100_000)
    assert len(got.paths) == 25 == len(set(got.paths))
    for path, ms in zip(got.paths, got.ms, strict=True):
        choices = [tuple(s[i] for i in p) for s, p in zip(subs, path, strict=True)]
        assert all(c or not ne for c, ne in zip(choices, nonempty, strict=True))
        assert window[0] <= ms <= window[1]
        assert predict(nse27.arch(choices), nse27_model.table).total_ms == pytest.approx(ms, rel=1e-9)


def test_untilted_when_already_in_window(nse27, nse27_model):
    subs = [(nse27.pool[0], nse27.pool[3])] * len(nse27.searchable)
    alive = np.ones((len(subs), 2), dtype=bool)
    probs = np.full((len(subs), 2), 0.5)
    exp = nse27_model.expected_ms(torch.tensor(probs, dtype=torch.float32), nse27_model.cost_matrix(subs, 2))
    beta, _ = find_tilt(nse27_model, subs, probs, alive, (float(exp) * 0.9, float(exp) * 1.1))
    assert beta == 0.0


def test_every_shipped_search_config_is_a_preset():
    from nse_hw.evolve.config import PRESETS

    assert PRESETS == ("ct-fmnist-48", "default", "imagenet-nse27", "smoke")


@pytest.mark.parametrize("name", ["smoke", "default", "imagenet-nse27", "ct-fmnist-48"])
def test_shipped_configs_load(name):
    from nse_hw.evolve.config import load_search_config, preset_path

    cfg = load_search_config(preset_path(name))
    assert cfg.space == "nse27-proxyless224" and cfg.evolve.subspace_size == 5
    if name == "imagenet-nse27":  # the paper's settings
        assert (cfg.train.epochs_per_round, cfg.train.lr, cfg.train.arch_lr) == (100, 0.4, 5e-3)
        assert (cfg.evolve.samples, cfg.evolve.bn_batches, cfg.train.arch_every) == (2000, 50, 2)
        assert cfg.train.arch_betas == [0.0, 0.999] and cfg.evolve.rounds is None


def test_the_ct48_preset_is_the_default_with_the_changes_measured_for_the_task():
    """configs/search/ct-fmnist-48.yaml = default.yaml + the five values its comments give (and the ct48
    search-quality benchmark merges into the default preset): nothing else may drift apart."""
    from nse_hw.config import to_dict
    from nse_hw.evolve.config import load_search_config, preset_path

    default, ct = (to_dict(load_search_config(preset_path(n))) for n in ("default", "ct-fmnist-48"))
    default["data"].update(source="ct-fmnist-48", limit_heldout=4096)
    default["train"].update(lr=0.006, epochs_per_round=6)
    default["evolve"].update(halving=[[16, 150], [4, 600]])
    assert ct == default


def test_data_warning_names_the_task_preset_where_fashion_mnist_settings_meet_a_cluttered_task():
    from nse_hw.evolve.run import data_warning

    msg = data_warning("fashion-mnist", "ct-fmnist-64", "the default preset")
    assert msg.startswith("the default preset is set for fashion-mnist") and "--preset ct-fmnist-48" in msg
    assert data_warning("fashion-mnist", "fashion-mnist", "x") is None
    assert data_warning("fashion-mnist", "/data/my-imagefolder", "x") is None  # not a task: nothing measured
    assert data_warning("ct-fmnist-48", "ct-fmnist-64", "x") is None  # a task preset on another canvas


def test_tilt_below_the_window_with_saturated_logits_stays_finite(nse27, nse27_model):
    """α far below the window with logits above 17.3 in non-skippable layers (p rounds to 1 in float32): the
    bisection used to read NaN as "below the target"; now β is negative and the tilt reaches the window."""
    subs = [tuple(nse27.pool[i] for i in range(j % 3, 27, 6)) for j in range(len(nse27.searchable))]
    k = max(len(s) for s in subs)
    alive = np.array([[i < len(s) for i in range(k)] for s in subs])
    cheapest = [int(np.argmin([nse27_model.layers[j].ops[o] for o in s])) for j, s in enumerate(subs)]
    probs = np.where(alive, 1e-3, 0.0)
    for j, c in enumerate(cheapest):
        probs[j, c] = 1 - 1e-8  # logit 18.4
    low = float(nse27_model.expected_ms(torch.tensor(probs), nse27_model.cost_matrix(subs, k)))
    window = (low * 1.5, low * 1.6)
    beta, tilted = find_tilt(nse27_model, subs, probs, alive, window)
    exp = nse27_model.expected_ms(torch.tensor(tilted), nse27_model.cost_matrix(subs, k))
    assert beta < 0 and np.isfinite(tilted).all()
    assert float(exp) == pytest.approx(low * 1.55, rel=0.01)


def test_tilt_far_above_the_window_stays_finite(nse27, nse27_model):
    """A strong positive tilt of layers α already made unlikely (p = 1e-6 in every layer that may not be empty)
    drives each of their p below 1e-16, where 1 - prod(1 - p) is exactly 0 and the expectation was 0/0: a search
    at the README's setting (seed 2) stopped there. The sampler falls back to the stable P(N >= 1)."""
    subs = [tuple(nse27.pool[i] for i in range(j % 3, 27, 6)) for j in range(len(nse27.searchable))]
    k = max(len(s) for s in subs)
    alive = np.array([[i < len(s) for i in range(k)] for s in subs])
    nonempty = np.array([not nse27.positions[j].skippable for j in nse27.searchable])
    probs = np.where(alive, np.where(nonempty[:, None], 1e-6, 0.5), 0.0)
    costs = nse27_model.cost_matrix(subs, k)
    floor = nse27_model.calibrated(nse27_model.fixed_ms + sum(
        0.0 if lt.identity else min(lt.ops[o] for o in s) for lt, s in zip(nse27_model.layers, subs, strict=True)))
    window = (floor * 1.05, floor * 1.05 * 1.001)  # near the cheapest: β runs high
    beta, tilted = find_tilt(nse27_model, subs, probs, alive, window)
    assert 10 < beta < 40 and not np.isfinite(float(nse27_model.expected_ms(torch.tensor(tilted), costs)))
    stable = float(nse27_model.expected_ms(torch.tensor(tilted), costs, stable=True))
    assert stable == pytest.approx(sum(window) / 2, rel=1e-3)
    # and the sampler draws from it: those layers' rows were redrawn until one held an op, which never happened
    # (a ct48 benchmark search hung there); now they are drawn from that condition exactly
    got = sample_in_window(nse27_model, subs, probs, alive, list(nonempty), (floor, floor * 1.2), 8,
                           np.random.default_rng(0), max_draws=8192)
    assert len(got.paths) == 8 and all(floor <= ms <= floor * 1.2 for ms in got.ms)


def test_draw_bits_redraws_as_it_did_and_conditions_where_redrawing_would_not_end(monkeypatch):
    from nse_hw.evolve import sampling

    p = np.array([[0.3, 0.1, 0.05], [0.5, 0.5, 0.0]])
    got = sampling.draw_bits(p, [3, 2], [True, False], 500, np.random.default_rng(7))
    rng = np.random.default_rng(7)  # plain rejection, the sampler's stream before REDRAWS: the same bits
    b0 = rng.random((500, 3)) < p[0]
    while (~b0.any(1)).any():
        e = ~b0.any(1)
        b0[e] = rng.random((int(e.sum()), 3)) < p[0]
    assert np.array_equal(got[0], b0) and np.array_equal(got[1], rng.random((500, 2)) < p[1, :2])
    tiny = np.array([[1e-17, 2e-17, 1e-17]])  # P(a row is non-empty) 4e-17: redrawing alone never ends
    monkeypatch.setattr(sampling, "REDRAWS", 50)
    (bits,) = sampling.draw_bits(tiny, [3], [True], 4096, np.random.default_rng(0))
    assert (bits.sum(1) == 1).all() and bits[:, 1].mean() == pytest.approx(0.5, abs=0.04)
