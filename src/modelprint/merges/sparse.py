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
    #: (n, n) mode over shared entries of beta_ij = (e - d_j) / (d_i - d_j): the share
    #: w_i / (w_i + w_j) normalised TIES gives parent i where exactly i and j survived
    pair_beta: np.ndarray | None = None
    #: (n,) 99.5th percentile of the dropped entries' magnitude ranks: TIES drops exactly the
    #: entries below rank 1 - density, so this is 1 - density for TIES
    rank_hi: np.ndarray | None = None


#: Entries a slot's ratio mode and magnitude ranks are estimated from (a seeded subsample:
#: the sole-contributor peak holds thousands of them; a slot's mean rank over 4096 dropped
#: entries has a standard error of ~0.005, and ~200 slots are pooled).
MODE_SAMPLE = 16384
RANK_SAMPLE = 4096

_EDGE_LO, _EDGE_HI, _BIN = np.log(0.02), np.log(20.0), 0.005


def _mode_ratio(e: np.ndarray, d: np.ndarray) -> float:
    """The most common value of ``e / d`` in (0.02, 20): the sole-contributor coefficient
    (a histogram of log-ratios in bins of 0.5 %, then the median around the peak)."""
    r = e / d
    r = r[(r > 0.02) & (r < 20.0)]
    if r.size < 16:
        return float("nan")
    logr = np.log(r)
    idx = ((logr - _EDGE_LO) / _BIN).astype(np.int64)
    k = int(np.argmax(np.bincount(idx)))
    near = (idx >= k - 2) & (idx <= k + 2)
    return float(np.median(r[near]))


def _mode_beta(e: np.ndarray, di: np.ndarray, dj: np.ndarray) -> float:
    """Mode of (e - d_j) / (d_i - d_j) in (0, 1) (bins of 0.25 %), median near the peak."""
    b = (e - dj) / (di - dj)
    b = b[(b > 0.0) & (b < 1.0)]
    if b.size < 16:
        return float("nan")
    idx = (b / 0.0025).astype(np.int64)
    k = int(np.argmax(np.bincount(idx)))
    return float(np.median(b[(idx >= k - 2) & (idx <= k + 2)]))


def _empty(n: int, counts: np.ndarray, rows: int, active: tuple[int, ...]) -> SparseSlot:
    return SparseSlot(counts=counts, multi_grams=np.zeros((rows, n + 1, n + 1)),
                      alpha=np.full(n, np.nan), rank_sum=np.full(n, np.nan), rank_n=0,
                      mixed_sign=0, multi_n=0, active=active)


def analyse(y: np.ndarray, parents: np.ndarray, base: np.ndarray, precision: str,
            lam: np.ndarray, floor: float = 0.01) -> SparseSlot:
    """Entry patterns of one slot: ``y`` (r, c), ``parents`` (n, r, c), ``base`` (r, c) as
    stored; ``lam`` the slot's least-squares task-vector weights (for the null rate, and to
    leave out parents that carry no weight here: an unrelated model offered as a parent
    must not enter the patterns). A slot with no more exactly-base entries than a linear
    merge would leave stops after counting them."""
    n = parents.shape[0]
    active = tuple(i for i in range(n) if lam[i] >= floor)
    act = list(active)
    b64 = base.astype(np.float64)
    d = parents[act].astype(np.float64) - b64
    e = y.astype(np.float64) - b64
    valid = np.any(d != 0, axis=0)
    none = valid & (y == base)
    pred = round_to(b64 + np.tensordot(np.asarray(lam, dtype=np.float64)[act], d, axes=1),
                    precision)
    null_none = valid & (pred == base)
    base_counts = [valid.sum(1), none.sum(1), null_none.sum(1)]
    n_none, n_null = int(base_counts[1].sum()), int(base_counts[2].sum())
    rows = y.shape[0]
    if not act or n_none <= 2 * n_null + 16:
        zeros = np.zeros(rows)
        counts = np.stack([*base_counts, *([zeros] * (1 + n))], axis=1).astype(np.float64)
        return _empty(n, counts, rows, active)
    u_b = ulp(base, precision)
    tol = 4.0 * ulp(y, precision) + 1e-6 * np.abs(e)
    rng = np.random.default_rng(rows * 7919 + y.shape[1])
    alpha = np.full(n, np.nan)
    sole = np.zeros((n, *y.shape), dtype=bool)
    for j, i in enumerate(act):
        precise = np.flatnonzero(valid & (np.abs(d[j]) > 64 * u_b))
        if precise.size > MODE_SAMPLE:
            precise = rng.choice(precise, MODE_SAMPLE, replace=False)
        alpha[i] = _mode_ratio(e.ravel()[precise], d[j].ravel()[precise])
        if np.isfinite(alpha[i]):
            sole[i] = valid & ~none & (np.abs(d[j]) > 4 * u_b) & \
                (np.abs(e - alpha[i] * d[j]) <= tol)
    multi = valid & ~none & ~np.any(sole, axis=0)
    counts = np.stack([*base_counts, multi.sum(1), *[s.sum(1) for s in sole]],
                      axis=1).astype(np.float64)
    full = np.zeros((n, *y.shape))
    full[act] = d
    grams = row_grams(np.concatenate([full, e[None]], axis=0) * multi[None])
    # magnitude rank (in [0, 1] among the slot's valid entries) of each dropped entry's |d_i|
    rank_sum = np.full(n, np.nan)
    rank_hi = np.full(n, np.nan)
    none_idx = np.flatnonzero(none)
    if none_idx.size > RANK_SAMPLE:
        none_idx = rng.choice(none_idx, RANK_SAMPLE, replace=False)
    valid_idx = np.flatnonzero(valid)
    if valid_idx.size > MODE_SAMPLE:
        valid_idx = rng.choice(valid_idx, MODE_SAMPLE, replace=False)
    for j, i in enumerate(act):
        mag = np.sort(np.abs(d[j].ravel()[valid_idx]))
        pos = np.searchsorted(mag, np.abs(d[j].ravel()[none_idx]))
        ranks = pos / max(mag.size - 1, 1)
        rank_sum[i] = float(np.sum(ranks))
        rank_hi[i] = float(np.quantile(ranks, 0.995)) if ranks.size else np.nan
    beta = np.full((n, n), np.nan)
    multi_idx = np.flatnonzero(multi)
    if multi_idx.size > MODE_SAMPLE:
        multi_idx = rng.choice(multi_idx, MODE_SAMPLE, replace=False)
    em = e.ravel()[multi_idx]
    for a, i in enumerate(act):
        for b, j in enumerate(act):
            if j <= i:
                continue
            di, dj = d[a].ravel()[multi_idx], d[b].ravel()[multi_idx]
            ok = np.abs(di - dj) > 64 * u_b.ravel()[multi_idx]
            beta[i, j] = _mode_beta(em[ok], di[ok], dj[ok])
            beta[j, i] = 1.0 - beta[i, j]
    signs = np.sign(d[:, multi])
    mixed = int(np.sum(np.any(signs != signs[:1], axis=0))) if len(act) > 1 else 0
    all_signs = np.sign(d[:, valid])
    mixed_all = int(np.sum(np.any(all_signs != all_signs[:1], axis=0))) if len(act) > 1 else 0
    return SparseSlot(counts=counts, multi_grams=grams, alpha=alpha,
                      rank_sum=rank_sum, rank_n=int(none_idx.size), active=active,
                      mixed_sign=mixed, multi_n=int(multi.sum()),
                      mixed_sign_all=mixed_all, valid_n=int(valid.sum()), pair_beta=beta,
                      rank_hi=rank_hi)
