"""Unbiased linear CKA (Song et al. 2012 HSIC U-statistic; used by AWM, arXiv 2510.06738).

Rows are samples (residual dimensions), columns features (output channels, compressed by a
random projection in the fingerprint sketches). Linear CKA only sees ``X X^T``, so it is
invariant to any orthogonal transform and any scaling of the feature axis -- head order, GQA
width and projection seed do not matter. The unbiased estimator (zero diagonal, U-statistic
correction) is what drives independent pairs to ~0 instead of the biased estimator's
dimension-dependent floor.

Cost: the n x n Gram matrices are never formed. With ``K = X X^T - diag(|x_i|^2)`` (zero
diagonal), every term of the estimator follows from the n x p features:
``<K_a, K_b> = |X_a^T X_b|_F^2 - sum_i |a_i|^2 |b_i|^2``, column sums ``X (X^T 1) - |x_i|^2``.
That is O(n p_a p_b) per pair instead of O(n^2) memory traffic, and a shuffle of the samples
(the permutation null) permutes n rows of X instead of gathering n^2 Gram entries -- on a
576-wide model the null went from ~2 s to ~0.1 s; on wide models the d x d Gram (32 MB at
d = 2048) is never built. Same statistic, float64, equal to the explicit formula up to
rounding (tests compare both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Gram:
    """The zero-diagonal linear Gram of ``x`` (n samples x p features), kept as its features
    plus the sums the unbiased HSIC needs."""

    def __init__(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"Gram needs a 2-D (samples x features) array, not {x.shape}")
        self.x = x
        self.sq = np.einsum("ij,ij->i", x, x)  # the diagonal that K zeroes
        self.col = x @ x.sum(axis=0) - self.sq  # column sums of K
        self.total = float(self.col.sum())
        self.n = x.shape[0]

    @property
    def k(self) -> np.ndarray:
        """The explicit n x n zero-diagonal Gram (for inspection; the estimator never needs it)."""
        k = self.x @ self.x.T
        np.fill_diagonal(k, 0.0)
        return k



def _finish(term1: np.ndarray | float, total_a: np.ndarray | float,
            total_b: np.ndarray | float, colprod: np.ndarray | float, n: int
            ) -> np.ndarray | float:
    term2 = total_a * total_b / ((n - 1) * (n - 2))
    term3 = 2.0 * colprod / (n - 2)
    return (term1 + term2 - term3) / (n * (n - 3))


def hsic_u(a: Gram, b: Gram) -> float:
    """Unbiased HSIC estimator of two zero-diagonal Grams over the same n samples (n >= 4)."""
    if a.n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 samples, not {a.n}")
    cross = a.x.T @ b.x
    term1 = float(np.vdot(cross, cross)) - float(a.sq @ b.sq)
    return float(_finish(term1, a.total, b.total, float(a.col @ b.col), a.n))


def hsic_matrix(a: Sequence[Gram], b: Sequence[Gram]) -> np.ndarray:
    """``hsic_u(a[i], b[j])`` for every i, j, from one product of the stacked features."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    n = a[0].n
    if any(g.n != n for g in (*a, *b)):
        raise ValueError("all Grams must have the same number of samples")
    xa = np.concatenate([g.x for g in a], axis=1)
    xb = np.concatenate([g.x for g in b], axis=1)
    cross = xa.T @ xb
    sq = cross * cross
    ia = np.cumsum([0] + [g.x.shape[1] for g in a])
    ib = np.cumsum([0] + [g.x.shape[1] for g in b])
    blocks = np.add.reduceat(np.add.reduceat(sq, ia[:-1], axis=0), ib[:-1], axis=1)
    term1 = blocks - np.stack([g.sq for g in a]) @ np.stack([g.sq for g in b]).T
    colprod = np.stack([g.col for g in a]) @ np.stack([g.col for g in b]).T
    ta = np.array([g.total for g in a])[:, None]
    tb = np.array([g.total for g in b])[None, :]
    return np.asarray(_finish(term1, ta, tb, colprod, n), dtype=np.float64)


class PairedHSIC:
    """``hsic_u(a[k], b[k])`` for each k, batched: the features are stacked once (one stack
    per pair of feature widths) and every pair is one batched product."""

    def __init__(self, a: Sequence[Gram], b: Sequence[Gram]) -> None:
        if len(a) != len(b):
            raise ValueError("PairedHSIC needs as many Grams on each side")
        self.size = len(a)
        groups: dict[tuple[int, int], list[int]] = {}
        for k, (ga, gb) in enumerate(zip(a, b, strict=True)):
            if ga.n != gb.n:
                raise ValueError("paired Grams must have the same number of samples")
            groups.setdefault((ga.x.shape[1], gb.x.shape[1]), []).append(k)
        self._groups = []
        for idx in groups.values():
            xat = np.stack([a[k].x for k in idx]).transpose(0, 2, 1).copy()
            self._groups.append((
                np.array(idx), a[idx[0]].n, xat, np.stack([b[k].x for k in idx]),
                np.stack([a[k].sq for k in idx]), np.stack([b[k].sq for k in idx]),
                np.stack([a[k].col for k in idx]), np.stack([b[k].col for k in idx]),
                np.array([a[k].total * b[k].total for k in idx])))

    def __call__(self) -> np.ndarray:
        out = np.zeros(self.size)
        for idx, n, xat, xb, sqa, sqb, cola, colb, totals in self._groups:
            cross = np.matmul(xat, xb)
            term1 = (np.einsum("kij,kij->k", cross, cross)
                     - np.einsum("ki,ki->k", sqa, sqb))
            colprod = np.einsum("ki,ki->k", cola, colb)
            out[idx] = _finish(term1, totals, 1.0, colprod, n)
        return out


def hsic_paired(a: Sequence[Gram], b: Sequence[Gram]) -> np.ndarray:
    """``hsic_u(a[k], b[k])`` for each k (see :class:`PairedHSIC`)."""
    return PairedHSIC(a, b)()


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
