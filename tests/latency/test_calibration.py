import numpy as np
import pytest

from nse_hw.latency.calibration import error_summary, fit_affine, loo_predictions, pct_errors, select_fit


def test_fit_recovers_known_affine_map_exactly():
    x = np.array([20.0, 35.0, 50.0, 80.0, 120.0])
    fit = fit_affine(x, 1.05 * x + 2.0)
    assert fit.slope == pytest.approx(1.05) and fit.intercept_ms == pytest.approx(2.0)
    assert fit.n == 5 and fit.fit_mape == pytest.approx(0.0, abs=1e-9) and fit.loo_mape == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(fit.apply([10.0, 100.0]), [12.5, 107.0])


def test_fit_on_noisy_data_and_its_leave_one_out():
    rng = np.random.default_rng(3)
    x = rng.uniform(20, 150, size=40)
    y = (1.02 * x + 2.5) * (1 + rng.normal(0, 0.01, size=x.size))
    fit = fit_affine(x, y)
    assert fit.slope == pytest.approx(1.02, rel=0.02) and fit.intercept_ms == pytest.approx(2.5, abs=1.0)
    # LOO predicts each point from the others, so it is worse than the in-sample fit, but only a little here
    assert fit.fit_mape < fit.loo_mape < 2 * fit.fit_mape + 0.5
    # LOO of point 0 is exactly the fit to points 1..n-1 applied to x[0]
    rest = fit_affine(x[1:], y[1:])
    assert loo_predictions(x, y)[0] == pytest.approx(rest.slope * x[0] + rest.intercept_ms)


def test_fit_weights_relative_error():
    # one outlier on a small network: the relative fit gives every network equal say, so the big
    # networks do not get to pull the line through the small one's relative error
    x = np.array([10.0, 100.0, 110.0, 120.0])
    y = np.array([13.0, 100.0, 110.0, 120.0])
    fit = fit_affine(x, y)
    err = np.abs(pct_errors(fit.apply(x), y))
    ols = np.polyfit(x, y, 1)
    err_ols = np.abs(pct_errors(np.polyval(ols, x), y))
    assert np.sum(err**2) < np.sum(err_ols**2)


def test_error_summary_by_hand():
    s = error_summary([90.0, 110.0, 130.0, 100.0], [100.0, 100.0, 100.0, 100.0])
    assert s["n"] == 4 and s["within_10pct"] == 0.75
    assert s["mape"] == pytest.approx(12.5) and s["max_abs_pct_err"] == pytest.approx(30.0)
    assert s["bias_pct"] == pytest.approx(7.5) and s["bias_ms"] == pytest.approx(7.5)


@pytest.mark.parametrize("x, y, match", [
    ([1.0, 2.0], [1.0, 2.0], ">= 3"),
    ([5.0, 5.0, 5.0], [1.0, 2.0, 3.0], "different LUT sums"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "equal-length"),
    ([1.0, 2.0, 3.0], [1.0, 0.0, 3.0], "positive"),
])
def test_fit_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_affine(x, y)


def test_scale_form_by_hand():
    # the scale minimises sum (s x/y - 1)^2: s = sum(r) / sum(r^2) with r = x/y = [0.5, 1.0] -> 1.5 / 1.25 = 1.2
    fit = fit_affine([1.0, 2.0, 4.0], [2.0, 2.0, 4.0], form="scale")
    r = np.array([0.5, 1.0, 1.0])
    assert fit.form == "scale" and fit.intercept_ms == 0.0
    assert fit.slope == pytest.approx(r.sum() / (r @ r))
    ident = fit_affine([90.0, 100.0, 120.0], [100.0, 100.0, 100.0], form="identity")
    assert (ident.slope, ident.intercept_ms) == (1.0, 0.0)
    assert ident.loo_mape == pytest.approx((10 + 0 + 20) / 3) == ident.fit_mape  # nothing fitted: LOO = raw


def test_select_fit_keeps_identity_when_fitting_only_adds_noise():
    # the raw sums are already right to ~1%: any fitted form predicts the left-out network worse
    x = np.array([40.0, 55.0, 80.0, 100.0])
    y = x * np.array([1.01, 0.99, 1.0, 1.012])
    fit, loo = select_fit(x, y)
    assert fit.form == "identity" and (fit.slope, fit.intercept_ms) == (1.0, 0.0)
    assert set(loo) == {"identity", "scale", "affine"} and loo["identity"] == min(loo.values())


def test_select_fit_takes_the_form_the_data_needs():
    x = np.array([20.0, 35.0, 50.0, 80.0, 120.0])
    assert select_fit(x, 0.9 * x)[0].form == "scale"  # exact: scale's LOO is 0, affine cannot beat it
    fit = select_fit(x, 1.05 * x + 2.0)[0]
    assert fit.form == "affine" and fit.slope == pytest.approx(1.05) and fit.intercept_ms == pytest.approx(2.0)


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="unknown calibration form 'cubic'"):
        fit_affine([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], form="cubic")
