"""Sparsified task-vector merges (TIES, DARE): what their residual structure looks like.

With a base ``B`` and parents' task vectors ``d_i = P_i - B``, mergekit's sparsified methods
drop entries of each ``d_i`` before mixing: TIES keeps the largest-magnitude fraction
``density`` of each task vector, elects a sign per entry (the sign of the summed weighted
deltas) and averages the agreeing ones (``normalize``: divided by the summed weights of the
agreeing parents); DARE drops entries at random with probability ``1 - density`` and rescales
the survivors by ``1 / density`` (``dare_ties`` with TIES's sign election, ``dare_linear``
without). Per entry ``e = y - B`` is therefore one of a few exact patterns:

* **none**: every contribution dropped, so ``y == B`` exactly -- a linear or task-arithmetic
  merge leaves an entry at the base only where rounding to the stored precision swallows the
  step; that rate is measured per entry by rounding ``B + sum lambda_i d_i`` (the slot's own
  least-squares lambda) to the stored precision, the *null* rate;
* **sole i**: only parent ``i`` survived, ``e = alpha_i d_i`` exactly, with ``alpha_i`` the
  same for every such entry (1 for normalised TIES, ``w_i / density`` for DARE), found as the
  mode of the ratio ``e / d_i``;
* **multi**: several survived, ``e = sum a_i d_i`` with fixed ``a_i`` for two parents (their
  normalised weights for TIES, ``w_i / density`` for DARE), fitted by least squares on those
  entries.

TIES and DARE differ in *which* entries are dropped: TIES drops the smallest, so on the
"none" entries the normalised magnitude rank of each ``|d_i|`` averages about
``(1 - density) / 2``; DARE drops at random, so it averages 1/2. The density follows from
the none fraction, ``P(none) = (1 - density)^n`` for independent drops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelprint.merges.fit import row_grams


def round_to(x: np.ndarray, precision: str) -> np.ndarray:
    """``x`` rounded to the stored precision (round to nearest even), as float32."""
    f = np.asarray(x, dtype=np.float32)
    if precision == "float16":
        return f.astype(np.float16).astype(np.float32)
    if precision == "bfloat16":
        b = np.ascontiguousarray(f).view(np.uint32).astype(np.uint64)
        r = (b + np.uint64(0x7FFF) + ((b >> np.uint64(16)) & np.uint64(1))) \
            & np.uint64(0xFFFF0000)
        return r.astype(np.uint32).view(np.float32)
    return f


def ulp(x: np.ndarray, precision: str) -> np.ndarray:
    """Spacing of the stored precision at ``x`` (float64)."""
    f = np.abs(np.asarray(x, dtype=np.float32))
    if precision == "float16":
        return np.spacing(f.astype(np.float16)).astype(np.float64)
    sp = np.spacing(f).astype(np.float64)
    return sp * 65536.0 if precision == "bfloat16" else sp


@dataclass
class SparseSlot:
    """One slot's entry-pattern statistics. Per-row arrays feed the bootstrap."""

    #: (rows, 4 + n): valid, none, null-none (expected under linear), multi, sole_1..n
    counts: np.ndarray
    #: (rows, n+1, n+1) Gram of [d_1..d_n, e] over the multi entries
    multi_grams: np.ndarray
    #: (n,) mode of e / d_i (nan when no ratio was precise enough)
    alpha: np.ndarray
    #: (n,) sum over none entries of the normalised magnitude rank of |d_i|; and their number
    rank_sum: np.ndarray
    rank_n: int
    #: multi entries whose task vectors do not all share one sign; and multi entries
    mixed_sign: int
    multi_n: int
    #: valid entries whose task vectors do not all share one sign; and valid entries
    mixed_sign_all: int = 0
    valid_n: int = 0
    #: parents whose task vector carries weight in this slot (least-squares lambda >= floor)
    active: tuple[int, ...] = ()


def _mode_ratio(e: np.ndarray, d: np.ndarray, precise: np.ndarray) -> float:
    r = e[precise] / d[precise]
    r = r[(r > 0.02) & (r < 20.0)]
    if r.size < 16:
        return float("nan")
    logr = np.log(r)
    edges = np.arange(np.log(0.02), np.log(20.0) + 0.005, 0.005)
    hist, _ = np.histogram(logr, bins=edges)
    k = int(np.argmax(hist))
    near = (logr >= edges[max(k - 2, 0)]) & (logr < edges[min(k + 3, len(edges) - 1)])
    return float(np.median(r[near]))


def analyse(y: np.ndarray, parents: np.ndarray, base: np.ndarray, precision: str,
            lam: np.ndarray, floor: float = 0.01) -> SparseSlot:
    """Entry patterns of one slot: ``y`` (r, c), ``parents`` (n, r, c), ``base`` (r, c) as
    stored; ``lam`` the slot's least-squares task-vector weights (for the null rate, and to
    leave out parents that carry no weight here: an unrelated model offered as a parent
    must not enter the patterns)."""
    n = parents.shape[0]
    active = tuple(i for i in range(n) if lam[i] >= floor)
    y64, b64 = y.astype(np.float64), base.astype(np.float64)
    d = parents.astype(np.float64) - b64
    d[[i for i in range(n) if i not in active]] = 0.0
    e = y64 - b64
    valid = np.any(d != 0, axis=0)
    none = valid & (y == base)
    pred = round_to(b64 + np.tensordot(np.asarray(lam, dtype=np.float64), d, axes=1), precision)
    null_none = valid & (pred == base)
    u_b, u_y = ulp(base, precision), ulp(y, precision)
    tol = 4.0 * u_y + 1e-6 * np.abs(e)
    alpha = np.array([_mode_ratio(e, d[i], valid & (np.abs(d[i]) > 64 * u_b))
                      if i in active else np.nan for i in range(n)])
    sole = np.zeros((n, *y.shape), dtype=bool)
    for i in range(n):
        if np.isfinite(alpha[i]):
            sole[i] = valid & ~none & (np.abs(d[i]) > 4 * u_b) & \
                (np.abs(e - alpha[i] * d[i]) <= tol)
    any_sole = np.any(sole, axis=0)
    multi = valid & ~none & ~any_sole
    counts = np.stack([valid.sum(1), none.sum(1), null_none.sum(1), multi.sum(1),
                       *[s.sum(1) for s in sole]], axis=1).astype(np.float64)
    z = np.concatenate([d, e[None]], axis=0) * multi[None]
    grams = row_grams(z)
    act = list(active)
    mag = np.abs(d[act][:, valid])
    ranks = np.argsort(np.argsort(mag, axis=1), axis=1) / max(mag.shape[1] - 1, 1)
    none_v = none[valid]
    signs = np.sign(d[act][:, multi])
    mixed = int(np.sum(np.any(signs != signs[:1], axis=0))) if len(act) > 1 else 0
    all_signs = np.sign(d[act][:, valid])
    mixed_all = int(np.sum(np.any(all_signs != all_signs[:1], axis=0))) if len(act) > 1 else 0
    rank_sum = np.full(n, np.nan)
    rank_sum[act] = ranks[:, none_v].sum(axis=1)
    return SparseSlot(counts=counts, multi_grams=grams, alpha=alpha,
                      rank_sum=rank_sum, rank_n=int(none_v.sum()), active=active,
                      mixed_sign=mixed, multi_n=int(multi.sum()),
                      mixed_sign_all=mixed_all, valid_n=int(valid.sum()))
