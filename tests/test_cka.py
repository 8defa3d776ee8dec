"""The feature-space HSIC (no n x n Gram) equals the textbook unbiased estimator."""

from __future__ import annotations

import numpy as np
import pytest

from modelprint.checks.cka import Gram, PairedHSIC, hsic_matrix, hsic_u, unbiased_cka
from modelprint.checks.unit_matching import layer_similarity


def explicit_hsic(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. (2012) eq. 5 with explicit zero-diagonal Grams."""
    n = x.shape[0]
    k, l_ = x @ x.T, y @ y.T
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l_, 0.0)
    one = np.ones(n)
    return float((np.trace(k @ l_) + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
                  - 2.0 / (n - 2) * (one @ k @ l_ @ one)) / (n * (n - 3)))


@pytest.mark.parametrize(("n", "p", "q"), [(5, 3, 7), (40, 8, 8), (120, 32, 4)])
def test_hsic_matches_the_explicit_estimator(n: int, p: int, q: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, p)) + 0.5
    y = x[:, :1] @ rng.normal(size=(1, q)) + rng.normal(size=(n, q))
    assert hsic_u(Gram(x), Gram(y)) == pytest.approx(explicit_hsic(x, y), rel=1e-9, abs=1e-12)
    assert Gram(x).k == pytest.approx(np.where(np.eye(n, dtype=bool), 0.0, x @ x.T))


def test_batched_forms_match_pairwise_and_the_explicit_estimator() -> None:
    rng = np.random.default_rng(7)
    n = 64
    xs = [rng.normal(size=(n, w)) for w in (16, 16, 8)]
    ys = [x[:, :4] @ rng.normal(size=(4, w)) + rng.normal(size=(n, w))
          for x, w in zip(xs, (16, 12, 16), strict=True)]
    ga, gb = [Gram(x) for x in xs], [Gram(y) for y in ys]
    mat = hsic_matrix(ga, gb)
    for i, a in enumerate(ga):
        for j, b in enumerate(gb):
            assert mat[i, j] == pytest.approx(hsic_u(a, b), rel=1e-9, abs=1e-12)
    paired = PairedHSIC(ga, gb)
    assert paired() == pytest.approx([hsic_u(a, b) for a, b in zip(ga, gb, strict=True)])
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        assert paired()[k] == pytest.approx(explicit_hsic(x, y), rel=1e-9, abs=1e-12)


def test_shuffling_samples_destroys_cka_of_related_matrices() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 16))
    y = x @ rng.normal(size=(16, 16)) + 0.1 * rng.normal(size=(300, 16))
    related = unbiased_cka(x, y)
    assert related is not None and related > 0.5
    shuffled = unbiased_cka(x, y[rng.permutation(300)])
    assert shuffled is not None and abs(shuffled) < 0.1


def test_too_few_samples_is_an_error_and_no_layer_similarity() -> None:
    """Two fingerprint sketches of different widths can share only a few residual dims:
    the estimator is undefined there (it divided by n - 3), and layer similarity says so
    with zeros instead of crashing the check."""
    rng = np.random.default_rng(0)
    g = Gram(rng.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="at least 4 samples"):
        hsic_u(g, g)
    sim = layer_similarity({0: rng.normal(size=(3, 5))}, {0: rng.normal(size=(3, 5)),
                                                          1: rng.normal(size=(3, 5))},
                           [0], [0, 1])
    assert sim.shape == (1, 2) and not sim.any()
