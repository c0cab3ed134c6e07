"""The search-quality benchmark's statistics on hand-made data (expected values worked out on paper)."""

import math

import pytest
from scipy import stats

from nse_hw.evolve.quality import (
    equivalence_p,
    equivalence_power,
    expected_max_normal,
    icc_rule_power,
    mean_sd,
    paired_difference,
    paired_t_power,
    pick_difference_sd,
    rank_correlation,
    round_gains,
    seeds_for_power,
    selection_gain,
    spread_ranks,
    tau_ceiling,
    variance_components,
)


def test_mean_sd():
    assert mean_sd([1, 2, 3, 4]) == {"n": 4, "mean": 2.5, "sd": pytest.approx(math.sqrt(5 / 3))}
    assert mean_sd([0.7]) == {"n": 1, "mean": 0.7, "sd": None}
    assert mean_sd([])["mean"] is None


def test_paired_difference_t_and_wilcoxon():
    nse = {0: 0.8, 1: 0.7, 2: 0.9, 3: 0.5}
    rnd = {0: 0.7, 1: 0.7, 2: 0.6}  # seed 3 has no partner: left out
    d = paired_difference(nse, rnd)
    # differences 0.1, 0.0, 0.3: mean 0.4/3, SD sqrt(((-1/30)^2 + (-4/30)^2 + (5/30)^2) / 2) = sqrt(0.07/3)
    assert d["pairs"] == ["0", "1", "2"] and d["n"] == 3
    assert d["mean"] == pytest.approx(0.4 / 3) and d["sd"] == pytest.approx(math.sqrt(0.07 / 3))
    # t = mean / (SD / sqrt 3); with 2 degrees of freedom the two-sided p is 1 - t / sqrt(t^2 + 2)
    t = (0.4 / 3) / (math.sqrt(0.07 / 3) / math.sqrt(3))
    assert d["t_p"] == pytest.approx(1 - t / math.sqrt(t * t + 2))
    # Wilcoxon drops the zero: 2 positive differences, P(W+ = 3) = 1/4 exactly, two-sided 1/2
    assert d["wilcoxon_p"] == pytest.approx(0.5)


def test_paired_difference_undefined_cases():
    assert paired_difference({0: 0.5}, {0: 0.4})["t_p"] is None  # one pair
    same = paired_difference({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6})
    assert same["mean"] == 0 and same["t_p"] is None and same["wilcoxon_p"] is None


def test_rank_correlation():
    r = rank_correlation([1, 2, 3, 4], [1, 3, 2, 4])
    # 6 pairs, one discordant (2, 3): tau = (5 - 1) / 6; sum d^2 = 2: rho = 1 - 6 * 2 / (4 * 15)
    assert r["kendall_tau"] == pytest.approx(2 / 3) and r["spearman_rho"] == pytest.approx(0.8)
    # exact Kendall test: 4 of the 24 orders have <= 1 inversion; two-sided p = 2 * 4 / 24
    assert r["kendall_p"] == pytest.approx(1 / 3)
    assert rank_correlation([1, 2, 3], [3, 2, 1])["kendall_tau"] == pytest.approx(-1)
    with pytest.raises(ValueError, match="at least 3"):
        rank_correlation([1, 2], [1, 2])
    with pytest.raises(ValueError, match="3 scores but 2"):
        rank_correlation([1, 2, 3], [1, 2])


def test_spread_ranks():
    assert spread_ranks(10, 4) == [0, 3, 6, 9]
    assert spread_ranks(11, 4) == [0, 3, 7, 10]  # 10/3 = 3.33 -> 3, 20/3 = 6.67 -> 7
    assert spread_ranks(5, 3) == [0, 2, 4]
    assert spread_ranks(3, 5) == [0, 1, 2]
    assert spread_ranks(9, 1) == [0]
    with pytest.raises(ValueError):
        spread_ranks(0, 3)


def test_round_gains():
    g = round_gains({0: [0.5, 0.6, 0.7], 1: [0.4, 0.4, 0.6]})
    assert [(x["from_round"], x["to_round"]) for x in g] == [(1, 2), (2, 3), (1, 3)]
    assert [x["mean"] for x in g] == pytest.approx([0.05, 0.15, 0.2])
    assert g[0]["sd"] == pytest.approx(math.sqrt(0.005))  # gains 0.1 and 0.0
    assert g[2]["t_p"] is None and g[2]["wilcoxon_p"] == pytest.approx(0.5)  # gains 0.2 and 0.2: SD 0
    assert round_gains({0: [0.5], 1: [0.4]}) == []  # one round: no gain to measure
    with pytest.raises(ValueError, match="different numbers of rounds"):
        round_gains({0: [0.5, 0.6], 1: [0.4]})


def test_variance_components_on_paper():
    # means 2 and 6 (grand 4): MSB = 2 * (4 + 4) / 1 = 16; MSW = (1 + 1 + 1 + 1) / 2 = 2
    v = variance_components({"a": [1.0, 3.0], "b": [5.0, 7.0]})
    assert v["seed_sd"] == pytest.approx(math.sqrt(2))
    assert v["arch_means_sd"] == pytest.approx(math.sqrt(8))
    assert v["arch_sd"] == pytest.approx(math.sqrt(7))  # (16 - 2) / 2
    assert v["icc"] == pytest.approx(14 / 18)
    # F = 8 on (1, 2) df is t^2 with t = sqrt(8) on 2 df: two-sided p = 1 - t / sqrt(2 + t^2)
    assert v["f_p"] == pytest.approx(1 - math.sqrt(8) / math.sqrt(10))
    assert v["means_range"] == 4.0


def test_icc_interval_matches_shrout_fleiss_published_example():
    # Shrout & Fleiss (1979), 6 targets x 4 judges, one-way model: ICC(1,1) 0.17, 95% CI [-0.13, 0.72], F 1.79 on
    # (5, 18) df, p 0.165 (the same figures as NAG's g04ga example and R's psych::ICC)
    v = variance_components({1: [9, 2, 5, 8], 2: [6, 1, 3, 2], 3: [8, 4, 6, 8], 4: [7, 1, 2, 6], 5: [10, 5, 6, 9],
                             6: [6, 2, 4, 7]})
    assert v["icc"] == pytest.approx(0.17, abs=0.005) and v["f_p"] == pytest.approx(0.165, abs=0.0005)
    assert v["icc_ci95"] == pytest.approx([-0.13, 0.72], abs=0.005)
    assert variance_components({"a": [2.0, 2.0], "b": [3.0, 3.0]})["icc_ci95"] is None  # MSW 0: no interval


def test_expected_max_and_selection_gain_on_paper():
    # E[max of 2] = 1/sqrt(π), of 3 = 3/(2 sqrt(π)); keeping the best of 2 by a score of correlation 0.5 with the
    # truth, arch SD 2: 2 * 0.5 / sqrt(π)
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi))
    assert expected_max_normal(3) == pytest.approx(3 / (2 * math.sqrt(math.pi)))
    assert selection_gain(arch_sd=2.0, corr=0.5, k=2) == pytest.approx(1 / math.sqrt(math.pi))
    assert selection_gain(arch_sd=2.0, corr=0.0, k=16) == 0.0
    with pytest.raises(ValueError, match="k must"):
        expected_max_normal(0)
    with pytest.raises(ValueError, match="corr"):
        selection_gain(arch_sd=1.0, corr=1.5, k=2)


def test_icc_rule_power_on_paper():
    # no arch effect and a rule that only asks p < α: it passes exactly α of the time
    assert icc_rule_power(icc=0.0, archs=8, seeds=2, min_icc=-1.0) == pytest.approx(0.05)
    # k = 2, ICC >= 0.6 <=> F >= 1.6 / 0.4 = 4 (above F's 5% point on (7, 8) df, 3.50); true ICC 0.6 scales F by
    # 1 + 2 * 1.5 = 4, so the rule passes with P(F(7, 8) >= 1)
    assert icc_rule_power(icc=0.6, archs=8, seeds=2, min_icc=0.6) == pytest.approx(stats.f.sf(1.0, 7, 8))
    powers = [icc_rule_power(icc=i, archs=8, seeds=2, min_icc=0.6) for i in (0.3, 0.45, 0.6, 0.8)]
    assert powers == sorted(powers) and powers[0] < 0.5 < powers[-1]  # more real effect, more passes
    with pytest.raises(ValueError, match="icc"):
        icc_rule_power(icc=1.0, archs=8, seeds=2, min_icc=0.6)


def test_variance_components_pure_noise_and_errors():
    v = variance_components({"a": [1.0, 3.0], "b": [1.0, 3.0]})  # same means: MSB 0, MSW 2, ICC -2 / 2
    assert v["arch_sd"] == 0.0 and v["icc"] == pytest.approx(-1.0)
    assert variance_components({"a": [2.0, 2.0], "b": [2.0, 2.0]})["icc"] is None
    with pytest.raises(ValueError, match="same number"):
        variance_components({"a": [1.0, 2.0], "b": [1.0]})
    with pytest.raises(ValueError, match="same number"):
        variance_components({"a": [1.0, 2.0]})


def test_tau_ceiling_on_paper():
    # ICC 0.5: r = sqrt(0.5), asin(r) = π/4, τ = 1/2; two retrains: R = 1 / 1.5 = 2/3
    assert tau_ceiling(0.5) == pytest.approx(0.5)
    assert tau_ceiling(0.5, retrains=2) == pytest.approx(2 / math.pi * math.asin(math.sqrt(2 / 3)))
    assert tau_ceiling(1.0) == pytest.approx(1.0) and tau_ceiling(-0.2) == 0.0 and tau_ceiling(None) is None
    with pytest.raises(ValueError, match="retrains"):
        tau_ceiling(0.5, retrains=0)


def test_power_matches_the_published_paired_t_tables():
    # G*Power, one-sample/paired t, two-sided α 0.05: d = 1 needs n = 10 (power 0.803), d = 0.5 needs n = 34
    assert paired_t_power(n=10, effect=1.0, sd=1.0) == pytest.approx(0.8031, abs=1e-4)
    assert paired_t_power(n=9, effect=1.0, sd=1.0) < 0.8
    assert seeds_for_power(effect=1.0, sd=1.0) == 10 and seeds_for_power(effect=0.5, sd=1.0) == 34
    assert paired_t_power(n=5, effect=0.0, sd=1.0) == pytest.approx(0.05)  # no effect: the test's own α
    with pytest.raises(ValueError, match="n >= 2"):
        paired_t_power(n=1, effect=1.0, sd=1.0)
    with pytest.raises(ValueError, match="seeds needed"):
        seeds_for_power(effect=0.01, sd=10.0, n_max=50)


def test_pick_difference_sd_on_paper():
    # arch 0.5, seed 1: 2 * 0.25 + 2 * 1 = 2.5; two retrains halve the seed part: 0.5 + 1 = 1.5
    assert pick_difference_sd(arch_sd=0.5, seed_sd=1.0) == pytest.approx(math.sqrt(2.5))
    assert pick_difference_sd(arch_sd=0.5, seed_sd=1.0, retrains=2) == pytest.approx(math.sqrt(1.5))
    with pytest.raises(ValueError, match="retrains"):
        pick_difference_sd(arch_sd=0.5, seed_sd=1.0, retrains=0)


def test_equivalence_p_is_two_one_sided_t_tests():
    # d = [-0.1, 0.1]: mean 0, SE 0.1, so each side's t is (0 ± 0.5) / 0.1 = ±5 on 1 df (Cauchy):
    # p = 1/2 - atan(5)/pi = 0.0628 on both sides
    eq = equivalence_p([-0.1, 0.1], margin=0.5)
    assert eq["p_lower"] == pytest.approx(0.5 - math.atan(5) / math.pi) == pytest.approx(eq["p_upper"])
    assert eq["p"] == pytest.approx(0.0628, abs=1e-4)
    shifted = equivalence_p([0.3, 0.5], margin=0.5)  # mean 0.4: near the upper margin, the upper side decides
    assert shifted["p"] == shifted["p_upper"] > shifted["p_lower"]
    with pytest.raises(ValueError, match="at least 2"):
        equivalence_p([0.1], margin=0.5)


def test_equivalence_power_matches_the_normal_approximation_for_many_pairs():
    # n 400, SD 1, margin 0.25: SE 0.05, each side misses with P(Z < 1.649 - 5) ~ 4e-4, so power ~ 0.9992;
    # n 100: SE 0.1, miss P(Z < 1.660 - 2.5) = 0.200 a side, power ~ 0.60
    assert equivalence_power(n=400, sd=1.0, margin=0.25) == pytest.approx(0.9992, abs=2e-4)
    assert equivalence_power(n=100, sd=1.0, margin=0.25) == pytest.approx(0.60, abs=0.01)
    # a true difference at the margin is declared equivalent about as often as alpha
    assert equivalence_power(n=100, sd=1.0, margin=0.25, effect=0.25) == pytest.approx(0.05, abs=0.01)
    assert equivalence_power(n=4, sd=5.0, margin=0.25) == 0.0  # hopeless: the bound clips at 0
