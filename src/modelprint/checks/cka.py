"""Unbiased linear CKA (Song et al. 2012 HSIC U-statistic; used by AWM, arXiv 2510.06738).

Rows are samples (residual dimensions), columns features (output channels, compressed by a
random projection in the fingerprint sketches). Linear CKA only sees ``X X^T``, so it is
invariant to any orthogonal transform and any scaling of the feature axis -- head order, GQA
width and projection seed do not matter. The unbiased estimator (zero diagonal, U-statistic
correction) is what drives independent pairs to ~0 instead of the biased estimator's
dimension-dependent floor.
"""

from __future__ import annotations

import numpy as np


class Gram:
    """A zero-diagonal Gram matrix with the sums the unbiased HSIC needs, computed once."""

    def __init__(self, x: np.ndarray) -> None:
        k = np.asarray(x, dtype=np.float64) @ np.asarray(x, dtype=np.float64).T
        np.fill_diagonal(k, 0.0)
        self.k = k
        self.col = k.sum(axis=0)
        self.total = float(self.col.sum())
        self.n = k.shape[0]

    def permuted(self, perm: np.ndarray) -> Gram:
        """The Gram of the same samples in another order (rows and columns permuted)."""
        g = Gram.__new__(Gram)
        g.k = self.k[np.ix_(perm, perm)]
        g.col = self.col[perm]
        g.total = self.total
        g.n = self.n
        return g


def hsic_u(a: Gram, b: Gram) -> float:
    """Unbiased HSIC estimator of two zero-diagonal Grams over the same n samples."""
    n = a.n
    term1 = float(np.vdot(a.k, b.k))
    term2 = a.total * b.total / ((n - 1) * (n - 2))
    term3 = 2.0 * float(a.col @ b.col) / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def unbiased_cka(x: np.ndarray, y: np.ndarray) -> float | None:
    """CKA of two sample-aligned matrices (n x p, n x q); None when undefined (n < 4 or a
    side without variation)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0] or x.shape[0] < 4:
        return None
    gx, gy = Gram(x), Gram(y)
    hxy, hxx, hyy = hsic_u(gx, gy), hsic_u(gx, gx), hsic_u(gy, gy)
    if hxx <= 0.0 or hyy <= 0.0:
        return None
    return float(hxy / np.sqrt(hxx * hyy))
