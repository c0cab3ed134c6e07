"""Statistics of the search-quality benchmark (issue 8): pure functions over plain numbers.

Paired differences between two methods over seeds (paired t-test and Wilcoxon signed-rank p-values), their
equivalence (two one-sided tests), rank correlation between supernet scores and retrained accuracy, the fixed rule
that picks architectures spread over the score range, and round-over-round gains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import integrate, stats


def _num(x: float) -> float | None:
    """JSON-safe: NaN (an undefined statistic) becomes None."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def mean_sd(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample SD (ddof 1; None below 2 values) of ``values``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "sd": None}
    return {"n": int(v.size), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else None}


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float]) -> dict[str, Any]:
    """``a - b`` paired on their common keys (seeds): mean and SD of the differences, the paired t-test's and the
    Wilcoxon signed-rank test's two-sided p-values (None where undefined: under 2 pairs or all differences 0;
    the t-test's also when every difference is the same, SD 0)."""
    keys = sorted(set(a) & set(b))
    d = np.array([a[k] - b[k] for k in keys], dtype=float)
    out: dict[str, Any] = {"pairs": [str(k) for k in keys], **mean_sd(d), "t_p": None, "wilcoxon_p": None}
    if d.size >= 2 and np.any(d != 0):
        if np.ptp(d) > 1e-12 * max(1.0, float(np.abs(d).max())):
            out["t_p"] = _num(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
        out["wilcoxon_p"] = _num(stats.wilcoxon(d).pvalue)
    return out


def rank_correlation(scores: Sequence[float], accs: Sequence[float]) -> dict[str, Any]:
    """Kendall τ (tau-b) and Spearman ρ between ``scores`` and ``accs`` with two-sided p-values."""
    if len(scores) != len(accs):
        raise ValueError(f"{len(scores)} scores but {len(accs)} accuracies")
    if len(scores) < 3:
        raise ValueError(f"rank correlation needs at least 3 pairs, got {len(scores)}")
    tau = stats.kendalltau(scores, accs)
    rho = stats.spearmanr(scores, accs)
    return {"n": len(scores), "kendall_tau": _num(tau.statistic), "kendall_p": _num(tau.pvalue),
            "spearman_rho": _num(rho.statistic), "spearman_p": _num(rho.pvalue)}


def spread_ranks(total: int, pick: int) -> list[int]:
    """``pick`` distinct ranks out of ``total`` (0 = best), evenly spaced from the best to the worst:
    round(i * (total - 1) / (pick - 1)). All of them when ``pick >= total``."""
    if total < 1 or pick < 1:
        raise ValueError(f"need total >= 1 and pick >= 1, got total {total}, pick {pick}")
    if pick >= total:
        return list(range(total))
    if pick == 1:
        return [0]
    return [int(math.floor(i * (total - 1) / (pick - 1) + 0.5)) for i in range(pick)]


def round_gains(per_seed: Mapping[Any, Sequence[float]]) -> list[dict[str, Any]]:
    """Paired gains over seeds of round r+1 over round r, and of the last round over the first: ``per_seed``
    maps a seed to its best in-budget score per round (seeds with another number of rounds are an error)."""
    lengths = {len(v) for v in per_seed.values()}
    if len(lengths) > 1:
        raise ValueError(f"seeds ran different numbers of rounds: {sorted(lengths)}")
    rounds = lengths.pop() if lengths else 0
    pairs = [(r, r + 1) for r in range(rounds - 1)] + ([(0, rounds - 1)] if rounds > 2 else [])
    return [{"from_round": i + 1, "to_round": j + 1,
             **paired_difference({s: v[j] for s, v in per_seed.items()}, {s: v[i] for s, v in per_seed.items()})}
            for i, j in pairs]


def variance_components(groups: Mapping[Any, Sequence[float]]) -> dict[str, Any]:
    """One-way random-effects ANOVA of accuracies grouped by architecture (each group: that arch's retrain seeds).

    Balanced groups of k >= 2 values each. Returns the within-arch (seed) SD sqrt(MSW), the SD of the arch
    means, the arch effect's SD sqrt(max(0, (MSB - MSW) / k)), ICC(1) = (MSB - MSW) / (MSB + (k - 1) MSW) (the share
    of one retrain's variance that is the architecture's, 0 = pure noise, 1 = noise-free), the F test's p-value
    for "all archs equal", the range of the arch means, and the ICC's 95% confidence interval from the F
    distribution (McGraw & Wong 1996, case 1: how little 8 archs x 2 seeds pin an ICC down). ICC is None where both
    mean squares are 0; its interval is None where MSW is 0."""
    sizes = {len(v) for v in groups.values()}
    if len(groups) < 2 or len(sizes) != 1 or (k := sizes.pop()) < 2:
        raise ValueError(f"need >= 2 archs with the same number (>= 2) of seeds each, got sizes "
                         f"{sorted(len(v) for v in groups.values())}")
    a = np.array([list(v) for v in groups.values()], dtype=float)
    n = a.shape[0]
    means = a.mean(axis=1)
    msb = k * float(((means - a.mean()) ** 2).sum()) / (n - 1)
    msw = float(((a - means[:, None]) ** 2).sum()) / (n * (k - 1))
    icc = None if msb + msw == 0 else (msb - msw) / (msb + (k - 1) * msw)
    df1, df2 = n - 1, n * (k - 1)
    p = ci = None
    if msw > 0:
        f = msb / msw
        p = _num(stats.f.sf(f, df1, df2))
        f_lo, f_hi = f / stats.f.ppf(0.975, df1, df2), f * stats.f.ppf(0.975, df2, df1)
        ci = [(f_lo - 1) / (f_lo + k - 1), (f_hi - 1) / (f_hi + k - 1)]
    return {"archs": n, "seeds": k, "seed_sd": math.sqrt(msw), "arch_means_sd": float(means.std(ddof=1)),
            "arch_sd": math.sqrt(max(0.0, (msb - msw) / k)), "icc": icc, "icc_ci95": ci, "f_p": p,
            "means_range": float(means.max() - means.min())}


def tau_ceiling(icc: float | None, *, retrains: int = 1) -> float | None:
    """Kendall τ that a perfect ranker (the architectures' true accuracies) can reach against the mean of
    ``retrains`` retrain seeds, when one retrain has reliability ``icc`` (``variance_components``), under normal
    errors: the mean's reliability R = m·ICC / (1 + (m - 1)·ICC) (Spearman-Brown), its correlation with the truth
    sqrt(R), and τ = (2/π)·asin(sqrt(R)) for a bivariate normal. None for an undefined ICC; 0 for ICC <= 0."""
    if icc is None:
        return None
    if retrains < 1:
        raise ValueError(f"retrains must be >= 1, got {retrains}")
    if icc <= 0:
        return 0.0
    rel = retrains * icc / (1 + (retrains - 1) * icc)
    return 2 / math.pi * math.asin(math.sqrt(min(1.0, rel)))


def paired_t_power(*, n: int, effect: float, sd: float, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t test on ``n`` pairs whose differences have SD ``sd`` when their true mean is
    ``effect``: P(|T| > t_crit) for T noncentral t with n - 1 df and noncentrality effect·sqrt(n)/sd."""
    if n < 2 or sd <= 0:
        raise ValueError(f"need n >= 2 and sd > 0, got n={n}, sd={sd}")
    df, nc = n - 1, effect * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(*, effect: float, sd: float, power: float = 0.8, alpha: float = 0.05, n_max: int = 10_000) -> int:
    """The fewest pairs (seeds) for which ``paired_t_power`` reaches ``power``."""
    for n in range(2, n_max + 1):
        if paired_t_power(n=n, effect=effect, sd=sd, alpha=alpha) >= power:
            return n
    raise ValueError(f"more than {n_max} seeds needed for effect {effect} at SD {sd}")


def equivalence_p(diffs: Sequence[float], *, margin: float) -> dict[str, Any]:
    """Two one-sided t tests (TOST) that the mean of the paired ``diffs`` lies inside (-margin, +margin): the
    p-value of each side and ``p``, the larger of the two (equivalence is shown at level α when ``p`` < α)."""
    d = np.asarray(diffs, dtype=float)
    if d.size < 2 or margin <= 0:
        raise ValueError(f"need at least 2 differences and a margin > 0, got {d.size} and {margin}")
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue  # H0: mean <= -margin
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue  # H0: mean >= +margin
    return {"margin": margin, "p_lower": _num(lower), "p_upper": _num(upper), "p": _num(max(lower, upper))}


def equivalence_power(*, n: int, sd: float, margin: float, effect: float = 0.0, alpha: float = 0.05) -> float:
    """Power of :func:`equivalence_p` on ``n`` pairs with difference SD ``sd`` and true mean ``effect``: 1 minus
    each one-sided test's chance to miss (noncentral t), a lower bound exact up to the chance both miss at once."""
    if n < 2 or sd <= 0 or margin <= 0:
        raise ValueError(f"need n >= 2, sd > 0 and margin > 0, got n={n}, sd={sd}, margin={margin}")
    df, se = n - 1, sd / math.sqrt(n)
    crit = stats.t.ppf(1 - alpha, df)
    miss_lower = stats.nct.cdf(crit, df, (effect + margin) / se)  # T_lower = (mean + margin)/se <= crit
    miss_upper = stats.nct.sf(-crit, df, (effect - margin) / se)  # T_upper = (mean - margin)/se >= -crit
    return float(max(0.0, 1.0 - miss_lower - miss_upper))


def pick_difference_sd(*, arch_sd: float, seed_sd: float, retrains: int = 1) -> float:
    """SD of one seed's paired difference between two methods' picks, each scored by the mean of ``retrains``
    retrains, bounding the picks' own spread by the window's architecture SD (``variance_components``): both
    picks vary across search seeds as independent in-window draws would, so sqrt(2·arch² + 2·seed²/retrains).
    A method that picks alike every seed has a smaller spread, so this errs towards more seeds."""
    if retrains < 1:
        raise ValueError(f"retrains must be >= 1, got {retrains}")
    return math.sqrt(2 * arch_sd**2 + 2 * seed_sd**2 / retrains)


def expected_max_normal(k: int) -> float:
    """E[max of k independent standard normals] (numerical integration of k·x·φ(x)·Φ(x)^(k-1)): 0 for k = 1,
    1/sqrt(π) for 2, 3/(2·sqrt(π)) for 3."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k == 1:
        return 0.0
    return float(integrate.quad(lambda x: k * x * stats.norm.pdf(x) * stats.norm.cdf(x) ** (k - 1),
                                -np.inf, np.inf)[0])


def selection_gain(*, arch_sd: float, corr: float, k: int) -> float:
    """Expected true gain, in the accuracy's units, of keeping the best of ``k`` uniform in-window draws by a
    score whose correlation with the true accuracy is ``corr`` (bivariate normal), over one draw kept blindly:
    arch_sd·corr·E[max of k normals]. ``arch_sd`` is the window's architecture-effect SD (``variance_components``):
    no ranker, however good, gets more than arch_sd·E[max of k] out of k candidates."""
    if not -1 <= corr <= 1:
        raise ValueError(f"corr must lie in [-1, 1], got {corr}")
    return arch_sd * corr * expected_max_normal(k)


def icc_rule_power(*, icc: float, archs: int, seeds: int, min_icc: float, alpha: float = 0.05) -> float:
    """Probability that a pilot of ``archs`` x ``seeds`` retrains passes the rule "ICC(1) >= min_icc and F-test
    p < alpha" when the task's true ICC is ``icc`` (balanced one-way random effects, normal errors). Both parts are
    thresholds on the same F = MSB/MSW: ICC >= m  <=>  F >= (1 + (k - 1)·m) / (1 - m); and F is (1 + k·θ) times an
    F(n - 1, n(k - 1)) variable, θ = icc / (1 - icc) the arch-to-seed variance ratio."""
    if not (0 <= icc < 1 and min_icc < 1) or archs < 2 or seeds < 2:
        raise ValueError(f"need 0 <= icc < 1, min_icc < 1, archs >= 2, seeds >= 2; got {icc}, {min_icc}, "
                         f"{archs}, {seeds}")
    df1, df2, k = archs - 1, archs * (seeds - 1), seeds
    threshold = max((1 + (k - 1) * min_icc) / (1 - min_icc), stats.f.isf(alpha, df1, df2))
    return float(stats.f.sf(threshold / (1 + k * icc / (1 - icc)), df1, df2))
