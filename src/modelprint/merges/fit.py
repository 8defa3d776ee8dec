"""Constrained least squares on Gram matrices: the mixture weights of a merge.

Every fit here minimises the squared distance between the candidate ``y`` and a linear
combination of regressors ``x_1..x_k`` over the sampled positions,

    RSS(w) = y.y - 2 w.h + w' G w,        G_ij = x_i.x_j,  h_i = x_i.y,

in float64, so only the Gram matrix ``[[G, h], [h', y.y]]`` of each sampled row is kept: a
bootstrap over rows, a per-layer or per-role fit and a drop-one fit are all sums of row Grams,
never a second pass over the weights. Constraints (non-negative weights, weights summing to
one) are solved exactly by enumerating the support: for a convex quadratic the optimum is the
equality-constrained solution on its own support, so the best feasible support solution is
the global optimum. With at most a handful of parents that is at most 2^k small solves,
batched over bootstrap replicates.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def row_grams(vectors: np.ndarray) -> np.ndarray:
    """Per-row Gram matrices of ``vectors`` (m, rows, cols) -> (rows, m, m), float64."""
    v = np.asarray(vectors, dtype=np.float64)
    return np.einsum("irc,jrc->rij", v, v, optimize=True)


def rss(gram: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Residual sum of squares of weights ``w`` (..., k) under augmented Gram(s) (..., k+1,
    k+1) whose last row/column is the target."""
    g, h, yy = gram[..., :-1, :-1], gram[..., :-1, -1], gram[..., -1, -1]
    return yy - 2 * np.einsum("...i,...i->...", w, h) + np.einsum("...i,...ij,...j->...",
                                                                   w, g, w)


def solve(gram: np.ndarray, *, nonneg: bool = True, sum_to_one: bool = False,
          free: tuple[int, ...] = ()) -> np.ndarray:
    """Weights minimising RSS for augmented Gram(s) ``gram`` (..., k+1, k+1).

    ``nonneg`` constrains every weight except those in ``free`` to be >= 0; ``sum_to_one``
    adds sum(w) = 1. Batched over leading axes. A singular support (collinear regressors) is
    skipped; if every support is singular the minimum-norm unconstrained solution is returned.
    """
    gram = np.asarray(gram, dtype=np.float64)
    batch = gram.shape[:-2]
    k = gram.shape[-1] - 1
    g = gram[..., :-1, :-1].reshape(-1, k, k)
    h = gram[..., :-1, -1].reshape(-1, k)
    n = g.shape[0]
    best_w = np.zeros((n, k))
    best_f = np.full(n, np.inf)
    constrained = [i for i in range(k) if nonneg and i not in free]
    always = [i for i in range(k) if i not in constrained]
    for size in range(0 if always else 1, len(constrained) + 1):
        for subset in combinations(constrained, size):
            support = sorted([*always, *subset])
            if not support:
                continue
            w = _solve_support(g, h, support, sum_to_one)
            if w is None:
                continue
            ok = np.all(w[:, constrained] >= -1e-12, axis=1) if constrained else np.ones(n, bool)
            f = -2 * np.einsum("ni,ni->n", w, h) + np.einsum("ni,nij,nj->n", w, g, w)
            better = ok & np.isfinite(f) & (f < best_f)
            best_w[better] = w[better]
            best_f[better] = f[better]
    missing = ~np.isfinite(best_f)
    if np.any(missing):
        best_w[missing] = np.einsum("nij,nj->ni", np.linalg.pinv(g[missing]), h[missing])
    if nonneg:
        idx = [i for i in constrained]
        best_w[:, idx] = np.maximum(best_w[:, idx], 0.0)
    return best_w.reshape(*batch, k)


def _solve_support(g: np.ndarray, h: np.ndarray, support: list[int], sum_to_one: bool
                   ) -> np.ndarray | None:
    n, k = h.shape
    s = len(support)
    gs = g[:, support][:, :, support]
    hs = h[:, support]
    if sum_to_one:
        a = np.zeros((n, s + 1, s + 1))
        a[:, :s, :s] = gs
        a[:, :s, s] = 1.0
        a[:, s, :s] = 1.0
        b = np.concatenate([hs, np.ones((n, 1))], axis=1)
    else:
        a, b = gs, hs
    # a relative ridge far below any real signal keeps exactly collinear supports solvable
    scale = np.maximum(np.einsum("nii->n", gs) / s, 1e-300)
    reg = np.zeros_like(a)
    reg[:, np.arange(s), np.arange(s)] = 1e-12 * scale[:, None]
    try:
        x = np.linalg.solve(a + reg, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return None
    out = np.zeros((n, k))
    out[:, support] = x[:, :s]
    return out


def explained(gram: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Fraction of the target's squared norm the fit explains: 1 - RSS / y.y."""
    yy = gram[..., -1, -1]
    return 1.0 - rss(gram, w) / np.where(yy > 0, yy, np.nan)


def alone(gram: np.ndarray) -> np.ndarray:
    """Per regressor, the fraction of y.y it explains on its own at its best scale: the
    squared cosine (x_i.y)^2 / (x_i.x_i y.y). An unrelated model explains ~0."""
    g = np.diagonal(gram[..., :-1, :-1], axis1=-2, axis2=-1)
    h = gram[..., :-1, -1]
    yy = gram[..., -1:, -1]
    return h * h / np.maximum(g * yy, 1e-300)


def transform(gram: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The Gram of the vectors ``t @ v`` given the Gram of ``v``: ``t G t'`` (batched)."""
    return np.einsum("ai,...ij,bj->...ab", t, gram, t)
