"""Which merge method the candidate is most consistent with, from the structure of its
residual.

The order of the questions matters, each answered by the data:

1. **Sparsified (TIES / DARE)?** -- only with a base: do far more entries equal the base
   exactly than a linear merge with the fitted weights would leave there after rounding to
   the stored precision (``sparse.py``)? Then TIES vs DARE by which entries were dropped
   (the smallest, or at random), and ``dare_ties`` vs ``dare_linear`` by whether surviving
   task vectors of opposite sign ever meet in one entry (sign election forbids it).
2. **SLERP?** -- when exactly two models carry weight: per tensor, does the slerp curve fit
   the candidate better than the straight line, in at least 97.5 % of bootstrap replicates
   (``slerp.py``)? Below 2.5 %: linear; in between the parents are too nearly parallel for
   the data to tell, and the answer says so.
3. **Task arithmetic?** -- with a base: do the task-vector weights sum to something other
   than one (the 95 % interval of the sum excludes 1)? A sum of one *is* a linear merge of
   the parents (the base's weight is then zero).
4. Otherwise **linear**.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelprint.merges.bootstrap import Estimate, estimate
from modelprint.merges.collect import SlotStats
from modelprint.merges.fit import solve
from modelprint.merges.slerp import fit_pair
from modelprint.merges.sparse import SparseSlot

LINEAR, SLERP, TASK_ARITHMETIC = "linear", "slerp", "task_arithmetic"
TIES, DARE_TIES, DARE_LINEAR = "ties", "dare_ties", "dare_linear"
METHODS = (LINEAR, SLERP, TASK_ARITHMETIC, TIES, DARE_TIES, DARE_LINEAR)

#: A task-arithmetic merge must give the base at least this share (|1 - sum of weights|):
#: below it the merge is a linear merge of the parents for every practical purpose, and
#: rounding to the stored precision can shift the sum by ~1e-3.
MIN_BASE_SHARE = 0.02

#: Fraction of bootstrap replicates in which one curve must beat the other to name it.
DECISIVE_FRACTION = 0.975


@dataclass
class SparseFinding:
    sparsified: bool
    none_fraction: float
    null_fraction: float
    method: str | None = None
    density: Estimate | None = None
    #: per replicate (B+1, n) weights from the multi entries (normalised for TIES)
    weights: np.ndarray | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def sparse_finding(slots: list[SlotStats], n: int) -> SparseFinding:
    """Aggregate the slots' entry patterns into the sparsification question and, when the
    answer is yes, the method, density and weights."""
    sp = [s for s in slots if s.sparse is not None and s.sparse_counts is not None]
    if not sp:
        return SparseFinding(False, 0.0, 0.0)
    counts = np.sum([s.sparse_counts for s in sp if s.sparse_counts is not None], axis=0)
    valid, none, null = counts[0, 0], counts[0, 1], counts[0, 2]
    none_f, null_f = none / max(valid, 1), null / max(valid, 1)
    # 5 binomial standard errors above the linear rate and at least twice it
    sparsified = bool(none - null > 5 * np.sqrt(null + 1) and none > 2 * null + 1)
    ev: dict[str, Any] = {"entries": int(valid), "exactly_base_fraction": none_f,
                          "exactly_base_fraction_if_linear": null_f}
    if not sparsified:
        return SparseFinding(False, none_f, null_f, evidence=ev)
    # density from P(none) = (1 - d)^k over the k parents that carry weight, per replicate
    k_active = int(np.median([len(s.sparse.active) for s in sp if s.sparse is not None]))
    frac = np.clip((counts[:, 1] - counts[:, 2]) / np.maximum(counts[:, 0], 1), 1e-12, 1.0)
    dens = 1.0 - frac ** (1.0 / max(k_active, 1))
    density = estimate(dens)
    found = [s.sparse for s in sp if s.sparse is not None]
    rank_n = sum(x.rank_n for x in found)
    rank = np.nansum([x.rank_sum for x in found], axis=0) / max(rank_n, 1)
    active = sorted({i for x in found for i in x.active})
    mean_rank = float(np.mean(rank[active])) if active else 0.5
    ties_pred, dare_pred = (1.0 - density.value) / 2.0, 0.5
    magnitude = abs(mean_rank - ties_pred) < abs(mean_rank - dare_pred)
    multi_n = sum(x.multi_n for x in found)
    mixed = sum(x.mixed_sign for x in found) / max(multi_n, 1)
    alphas = np.array([x.alpha for x in found])
    alpha = np.array([np.nanmedian(alphas[:, i]) if np.any(np.isfinite(alphas[:, i]))
                      else np.nan for i in range(n)])
    normalised = bool(active) and bool(np.all(np.abs(alpha[active] - 1.0) < 0.02))
    if magnitude:
        method = TIES
    else:
        # consensus methods never let opposite-sign task vectors meet in one entry
        method = DARE_TIES if mixed < 0.5 * _mixed_sign_rate(slots) else DARE_LINEAR
    if method == TIES:
        # magnitude trims of sibling task vectors are correlated, so (1 - d)^k misjudges
        # P(none); the dropped entries' upper magnitude rank is 1 - density directly
        dens = _ties_density(found, dens.shape[0])
        density = estimate(dens)
    weights = mode_weights(found, n, method, normalised, dens)
    if not np.any(weights[0] > 0):
        # no coefficient was measurable (float16 sketches of small task vectors): fall back
        # to one least-squares fit over every shared entry, biased with 3+ parents
        grams = np.sum([s.sparse_grams / s.spread for s in sp if s.sparse_grams is not None],
                       axis=0)
        a = solve(grams, nonneg=True)
        weights = a / np.maximum(a.sum(axis=1, keepdims=True), 1e-300) \
            if method == TIES else a * dens[:, None]
        ev["weights_from"] = "least squares over shared entries (no exact coefficient)"
    ev.update({"density": density.to_json(), "mean_magnitude_rank_of_dropped": mean_rank,
               "rank_if_ties": ties_pred, "rank_if_dare": dare_pred,
               "mixed_sign_fraction_of_shared_entries": mixed,
               "sole_coefficients": [None if not np.isfinite(x) else float(x) for x in alpha],
               "normalised": normalised})
    return SparseFinding(True, none_f, null_f, method, density, weights, ev)


def mode_weights(found: list[SparseSlot], n: int, method: str, normalised: bool,
                 dens: np.ndarray, seed: int = 0) -> np.ndarray:
    """Weights (B+1, n) from the slots' exact per-entry coefficients, medians over slots,
    with slots resampled for the replicates (replicate 0: every slot).

    * normalised TIES: where exactly parents i and j survived, ``e = b d_i + (1 - b) d_j``
      with ``b = w_i / (w_i + w_j)`` -- the pairwise shares give the relative weights
      (least squares on ``log w_i - log w_j = logit b_ij``), normalised to sum 1;
    * TIES without normalising: the sole coefficients are the weights;
    * DARE: the sole coefficients are ``w_i / density``, times the density estimate.

    Fitting all shared entries at once would be biased with three or more parents: entries
    where different subsets survived have different coefficients.
    """
    rng = np.random.default_rng(seed)
    alphas = np.array([x.alpha for x in found])
    betas = np.array([x.pair_beta if x.pair_beta is not None else np.full((n, n), np.nan)
                      for x in found])
    reps = dens.shape[0]
    idx = rng.integers(0, len(found), (reps, len(found)))
    idx[0] = np.arange(len(found))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-nan columns: inactive parents
        alpha = np.nanmedian(alphas[idx], axis=1)
        beta = np.nanmedian(betas[idx], axis=1) if method == TIES and normalised else None
    out = np.zeros((reps, n))
    for r in range(reps):
        if beta is not None:
            out[r] = _from_shares(beta[r], np.isfinite(alpha[r]))
        elif method == TIES:
            out[r] = np.nan_to_num(alpha[r])
        else:
            out[r] = np.nan_to_num(alpha[r]) * dens[r]
    return out


def _ties_density(found: list[SparseSlot], reps: int, seed: int = 1) -> np.ndarray:
    """1 - median over slots and parents of the dropped entries' 99.5 % magnitude rank,
    slots resampled for the replicates."""
    hi = np.array([x.rank_hi if x.rank_hi is not None else np.full(len(x.alpha), np.nan)
                   for x in found])
    per_slot = np.array([np.nanmean(r) if np.any(np.isfinite(r)) else np.nan for r in hi])
    per_slot = per_slot[np.isfinite(per_slot)]
    if per_slot.size == 0:
        return np.full(reps, np.nan)
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    out[0] = 1.0 - np.median(per_slot)
    for r in range(1, reps):
        out[r] = 1.0 - np.median(per_slot[rng.integers(0, per_slot.size, per_slot.size)])
    return out


def _from_shares(beta: np.ndarray, present: np.ndarray) -> np.ndarray:
    n = beta.shape[0]
    idx = [i for i in range(n) if present[i]]
    w = np.zeros(n)
    if len(idx) == 1:
        w[idx[0]] = 1.0
        return w
    rows, rhs = [], []
    for a in idx:
        for b in idx:
            if b > a and np.isfinite(beta[a, b]) and 0 < beta[a, b] < 1:
                row = np.zeros(len(idx))
                row[idx.index(a)], row[idx.index(b)] = 1.0, -1.0
                rows.append(row)
                rhs.append(np.log(beta[a, b] / (1 - beta[a, b])))
    if not rows:
        return w
    rows.append(np.ones(len(idx)))
    rhs.append(0.0)
    logw = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    ws = np.exp(logw)
    w[idx] = ws / ws.sum()
    return w


def _mixed_sign_rate(slots: list[SlotStats]) -> float:
    """Fraction of all sampled entries whose task vectors do not all share one sign: what
    the shared entries of a merge without sign election show (DARE drops at random)."""
    sp = [s.sparse for s in slots if s.sparse is not None]
    return sum(x.mixed_sign_all for x in sp) / max(sum(x.valid_n for x in sp), 1)


@dataclass
class SlerpFinding:
    pair: tuple[int, int]
    decided: str | None  # SLERP, LINEAR or None (indistinguishable)
    fraction_slerp_better: float
    median_angle_deg: float
    #: per slot and replicate (B+1, slots) t of the slerp model
    t: np.ndarray
    evidence: dict[str, Any] = field(default_factory=dict)


def slerp_finding(slots: list[SlotStats], pair: tuple[int, int]) -> SlerpFinding:
    """Linear vs slerp between raw regressors ``pair`` (v0 = first)."""
    i, j = pair
    sel = np.zeros((3, slots[0].raw.shape[-1]))
    sel[0, i] = sel[1, j] = sel[2, -1] = 1.0
    grams = np.stack([np.einsum("ai,bij,cj->bac", sel, s.raw, sel) for s in slots], axis=1)
    cos = np.array([g[0, 0, 1] / np.sqrt(max(g[0, 0, 0] * g[0, 1, 1], 1e-300))
                    for g in grams.transpose(1, 0, 2, 3)])
    spread = np.array([s.spread for s in slots])
    fit = fit_pair(grams, cos[None, :])
    r_lin = (fit["rss_linear"] / spread).sum(axis=1)
    r_sl = (fit["rss_slerp"] / spread).sum(axis=1)
    better = float(np.mean(r_sl[1:] < r_lin[1:])) if r_lin.shape[0] > 1 else \
        float(r_sl[0] < r_lin[0])
    # SLERP must also remove most of what the straight line leaves: a slightly better fit of
    # a candidate both curves explain poorly (a task-arithmetic merge offered without its
    # base, a merge trained further) is not evidence of slerp
    removes_most = r_sl[0] <= 0.5 * r_lin[0]
    if better >= DECISIVE_FRACTION and removes_most:
        decided: str | None = SLERP
    elif better <= 1 - DECISIVE_FRACTION and r_lin[0] <= r_sl[0]:
        decided = LINEAR
    else:
        decided = None
    angle = float(np.degrees(np.median(np.arccos(np.clip(cos, -1, 1)))))
    ev = {"pair": [i, j], "fraction_of_replicates_slerp_fits_better": better,
          "rss_linear": float(r_lin[0]), "rss_slerp": float(r_sl[0]),
          "median_angle_deg": angle}
    return SlerpFinding(pair, decided, better, angle, fit["t_slerp"], ev)


def sum_excludes_one(weights: np.ndarray) -> tuple[bool, Estimate]:
    """Does the 95 % interval of the summed task-vector weights exclude 1?"""
    est = estimate(weights.sum(axis=1))
    return bool((est.lo > 1.0 or est.hi < 1.0) and abs(est.value - 1.0) >= MIN_BASE_SHARE), est
