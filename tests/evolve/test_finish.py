import pytest

from nse_hw.errors import NseError
from nse_hw.evolve import Candidate, pareto_front
from nse_hw.evolve.finish import final_candidate, rerank_candidates, tie_band, tied_pick


def cand(ms: float, acc: float) -> Candidate:
    return Candidate([], ms, acc)


# scored at 100 images: a top-1 of 0.5 has a standard error of sqrt(0.5 * 0.5 / 100) = 0.05
SCORED = [cand(5.0, 0.50), cand(7.0, 0.40), cand(9.0, 0.46), cand(9.5, 0.44), cand(11.0, 0.60)]
FRONT = [SCORED[i] for i in pareto_front(SCORED)]  # 5 ms (0.50) and 11 ms (0.60)


def test_strict_pick_is_the_most_accurate_pareto_arch_in_budget():
    assert [c.ms for c in FRONT] == [5.0, 11.0]
    assert final_candidate(FRONT, 10.0).ms == 5.0  # 11 ms is more accurate but over budget
    assert tie_band(0.5, 100, 0.0) == 0.0
    assert tied_pick(final_candidate(FRONT, 10.0), SCORED, 10.0, band=0.0).ms == 5.0


def test_tie_band_picks_the_slowest_in_budget_arch_within_it():
    assert tie_band(0.5, 100, 1.0) == pytest.approx(0.05)
    # band 0.05: 9 ms (0.46 >= 0.45) ties with 5 ms; 9.5 ms (0.44) does not; 11 ms is over budget
    best = final_candidate(FRONT, 10.0)
    assert tied_pick(best, SCORED, 10.0, band=tie_band(best.acc, 100, 1.0)).ms == 9.0
    # two SE (0.10): 9.5 ms (0.44 >= 0.40) ties as well and is slower
    assert tied_pick(best, SCORED, 10.0, band=tie_band(best.acc, 100, 2.0)).ms == 9.5
    # 10000 images: SE 0.005, nothing ties
    assert tied_pick(best, SCORED, 10.0, band=tie_band(best.acc, 10_000, 1.0)).ms == 5.0


def test_no_pareto_arch_in_budget_is_an_error():
    with pytest.raises(NseError, match="no Pareto architecture is within the 4 ms budget"):
        final_candidate(FRONT, 4.0)


def test_rerank_takes_the_best_scored_in_budget_archs_without_extras():
    scored = SCORED + [Candidate([], 6.0, 0.70, kind="extra"), Candidate([], 8.0, 0.50, kind="previous")]
    # in budget (10 ms), extras out: 5 ms 0.50, 8 ms 0.50, 9 ms 0.46, 9.5 ms 0.44, 7 ms 0.40; the tie at 0.50
    # goes to the slower arch first
    assert [c.ms for c in rerank_candidates(scored, 10.0, 3)] == [8.0, 5.0, 9.0]
    assert [c.ms for c in rerank_candidates(scored, 10.0, 99)] == [8.0, 5.0, 9.0, 9.5, 7.0]
    assert rerank_candidates(scored, 4.0, 3) == []
