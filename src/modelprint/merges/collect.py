"""One pass over the sampled slots: the per-slot, per-replicate statistics every fit uses.

Coordinates: the raw Gram is over ``[P_1..P_n, (B), y]``. Without a base the mixture is fitted
there; with a base, in task-vector coordinates ``[P_1 - B, .., P_n - B, y - B]``. Each slot is
divided by its *spread* -- the summed squared distance of the regressors from their mean
(from the base, with one) -- so every tensor counts by how much its parents differ, not by
its raw norm (an embedding matrix would otherwise outweigh every layer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelprint.checks.base import ModelView
from modelprint.merges.bootstrap import N_BOOT, replicate, row_weights
from modelprint.merges.fit import row_grams, solve, transform
from modelprint.merges.sample import iter_samples
from modelprint.merges.sparse import SparseSlot, analyse

#: The entry-pattern analysis (``sparse.py``) reads every SPARSE_ROW_STRIDE-th sampled row:
#: it costs ~10x the Gram per entry, and half the rows already hold ~24k entries a slot
#: (keeps a 135M-parameter decomposition with a base under 5 s on two busy cores).
SPARSE_ROW_STRIDE = 2


@dataclass
class SlotStats:
    role: str
    layer: int | None
    #: (B+1, m, m) raw Grams over [P_1..P_n, (B), y] per replicate
    raw: np.ndarray
    #: divisor making slots comparable (spread of the regressors)
    spread: float
    precision: str
    sparse: SparseSlot | None = None
    #: (B+1, 4+n) replicate sums of the sparse per-row counts
    sparse_counts: np.ndarray | None = None
    #: (B+1, n+1, n+1) replicate sums of the multi-entry Grams
    sparse_grams: np.ndarray | None = None


def delta_transform(n: int) -> np.ndarray:
    """Matrix taking raw [P_1..P_n, B, y] to [P_1-B, .., P_n-B, y-B]."""
    t = np.zeros((n + 1, n + 2))
    for i in range(n):
        t[i, i] = 1.0
        t[i, n] = -1.0
    t[n, n + 1] = 1.0
    t[n, n] = -1.0
    return t


def _spread(raw: np.ndarray, n: int, has_base: bool) -> float:
    if has_base:
        g = transform(raw, delta_transform(n))[:-1, :-1]
        return float(np.trace(g))
    k = n
    center = np.eye(k) - 1.0 / k
    g = center @ raw[:k, :k] @ center
    return float(np.trace(g))


def collect(candidate: ModelView, parents: Sequence[ModelView], base: ModelView | None, *,
            use_weights: bool, n_boot: int = N_BOOT, seed: int = 0,
            rows: int | None = None, cols: int | None = None) -> list[SlotStats]:
    """Statistics of every shared slot; slots where the regressors do not differ are left out
    (they carry no information about the weights)."""
    rng = np.random.default_rng(seed)
    n = len(parents)
    models = [*parents, *([base] if base is not None else [])]
    kw = {k: v for k, v in (("rows", rows), ("cols", cols)) if v is not None}
    out: list[SlotStats] = []
    for s in iter_samples(candidate, models, use_weights=use_weights, **kw):
        z = np.concatenate([s.models, s.y[None]], axis=0)
        per_row = row_grams(z)
        w = row_weights(rng, per_row.shape[0], n_boot)
        raw = replicate(per_row, w)
        spread = _spread(raw[0], n, base is not None)
        yy = raw[0, -1, -1]
        if not np.isfinite(spread) or spread <= 1e-18 * max(yy, 1e-300):
            continue
        st = SlotStats(s.role, s.layer, raw, spread, s.precision)
        if base is not None:
            lam = solve(transform(raw[0], delta_transform(n)), nonneg=True)
            rows_sp = slice(None, None, SPARSE_ROW_STRIDE)
            sp = analyse(s.y[rows_sp], s.models[:n, rows_sp], s.models[n, rows_sp],
                         s.precision, lam)
            st.sparse = sp
            st.sparse_counts = replicate(sp.counts, w[:, rows_sp])
            st.sparse_grams = replicate(sp.multi_grams, w[:, rows_sp])
        out.append(st)
    return out
