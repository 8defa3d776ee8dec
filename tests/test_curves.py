"""The curve maths the seed checks share."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from modelprint.checks import curves as cv


def test_pearson_and_spearman_match_scipy() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    y = y + 0.5 * x
    assert cv.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert cv.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_pearson_ignores_scale_so_z_scoring_changes_nothing() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=20), rng.normal(size=20)
    assert cv.pearson(x, y) == pytest.approx(cv.pearson(3 * x + 7, y), abs=1e-12)


@pytest.mark.parametrize("flat", [[0.0395] * 18, [1 / math.sqrt(640)] * 18, [0.0] * 18])
def test_flat_curves_give_no_information_without_warnings(flat: list[float]) -> None:
    x = np.array(flat)
    y = np.linspace(0.01, 0.03, 18)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cv.pearson(x, y) is None and cv.pearson(y, x) is None
        assert cv.spearman(x, y) is None
        assert cv.lag1_autocorr(x) is None and cv.effective_n(x, y) is None
        comp = cv.compare_curves(x, y)
        assert comp.r is None and comp.flat_a and not comp.flat_b and not comp.informative
        assert cv.zscore(x) == [0.0] * 18


def test_rounding_level_variation_counts_as_flat_but_real_variation_does_not() -> None:
    base = 1 / math.sqrt(640)
    assert cv.is_flat(np.array([base, base * (1 + 1e-14), base]))
    assert not cv.is_flat(np.array([base, base * (1 + 1e-6), base]))


def test_quantisation_noise_on_a_constant_curve_is_flat_but_trained_variation_is_not() -> None:
    rng = np.random.default_rng(7)
    noisy_const = 0.0395 * (1 + 3.4e-4 * rng.standard_normal(18))  # Gemma 3 q/k/v after Q4
    trained = 0.02 * (1 + 0.07 * rng.standard_normal(18))          # all-MiniLM-L6's spread
    assert cv.is_flat_curve(noisy_const) and not cv.is_flat(noisy_const)
    assert not cv.is_flat_curve(trained)
    assert cv.compare_curves(noisy_const, trained).r is None
    assert cv.compare_curves(noisy_const, trained, flat_cv=0.0).r is not None


def test_short_series_are_not_correlated() -> None:
    assert cv.pearson(np.array([1.0, 2.0]), np.array([2.0, 1.0])) is None


def test_detrending_removes_a_shared_trend() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(40, dtype=float)
    x, y = t + rng.normal(size=40), t + rng.normal(size=40)
    assert cv.pearson(x, y) > 0.95  # the spurious correlation of two trends
    assert abs(cv.pearson(cv.detrend(x), cv.detrend(y))) < 0.4


def test_quadratic_residual_removes_a_shared_curved_shape() -> None:
    """First differences of a shared parabola are a shared line: only residuals remove it."""
    rng = np.random.default_rng(4)
    t = np.linspace(0, 1, 30)
    x = t**2 + 0.002 * rng.normal(size=30)
    y = t**2 + 0.002 * rng.normal(size=30)
    comp = cv.compare_curves(x, y)
    assert comp.r_detrended is not None and comp.r_detrended > 0.8
    assert comp.r_residual is not None and abs(comp.r_residual) < 0.5


def test_effective_n_for_smooth_and_white_curves() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    e = rng.normal(size=(2, n))
    ar = np.zeros((2, n))
    for i in range(1, n):
        ar[:, i] = 0.9 * ar[:, i - 1] + e[:, i]
    want = n * (1 - 0.81) / (1 + 0.81)
    assert cv.effective_n(ar[0], ar[1]) == pytest.approx(want, rel=0.1)
    assert cv.effective_n(e[0], e[1]) == pytest.approx(n, rel=0.1)
    # the METHODS.md example: 48 points with rho ~ 0.9 are worth ~5
    t = np.linspace(0, 1, 48)
    smooth = cv.effective_n(t + 0.01 * np.sin(9 * t), t**1.5)
    assert smooth is not None and smooth < 6


def test_p_approx_grows_with_fewer_effective_points() -> None:
    p_many = cv.pearson_p_approx(0.9, 48)
    p_few = cv.pearson_p_approx(0.9, 5)
    assert p_many is not None and p_few is not None and p_many < 1e-10 < p_few < 0.1
    assert cv.pearson_p_approx(0.9, 2.0) is None


def test_alignment_identity_explicit_and_refused() -> None:
    pairs, src = cv.resolve_alignment(3, 3, [])
    assert pairs == [(0, 0), (1, 1), (2, 2)] and "identity" in src
    pairs, src = cv.resolve_alignment(3, 2, [[0, 0], [2, 1]])
    assert pairs == [(0, 0), (2, 1)] and "explicit" in src
    none, reason = cv.resolve_alignment(30, 28, None)
    assert none is None and "30 vs 28" in reason
    with pytest.raises(cv.AlignmentError, match="out of range"):
        cv.resolve_alignment(3, 2, [[0, 2]])
    with pytest.raises(cv.AlignmentError, match="pair"):
        cv.resolve_alignment(3, 2, [[True, 0]])


def test_pair_curves_drops_missing_values() -> None:
    pc = cv.pair_curves([1.0, None, 3.0, 4.0], [1.0, 2.0, 3.0], [(0, 0), (1, 1), (3, 2)])
    assert pc.layers == [(0, 0), (3, 2)] and pc.missing == [(1, 1)]
    assert list(pc.x) == [1.0, 4.0] and list(pc.y) == [1.0, 3.0]


def test_centred_correlation_versus_cosine_on_positive_vectors() -> None:
    rng = np.random.default_rng(6)
    a, b = 1 + 0.1 * rng.normal(size=500), 1 + 0.1 * rng.normal(size=500)
    assert cv.uncentred_cosine(a, b) > 0.98
    r = cv.centred_correlation(a, b)
    assert r is not None and abs(r) < 0.15
    assert cv.centred_correlation(a, b[:10]) is None
