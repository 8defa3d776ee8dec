"""Residual-stream alignment of two models through their embeddings (AWM step 1).

Two models that share tokens can be put in one residual basis: take the embedding rows of
the tokens both vocabularies contain (by string), compare every residual dimension (column) of
one with every column of the other, and match them one-to-one with the linear assignment
problem on ``-|corr|`` (``scipy.optimize.linear_sum_assignment``), keeping each match's sign.
A derived model whose residual stream was permuted or sign-flipped is recovered exactly; a
width-pruned one maps into a subset of its parent's dimensions.

Columns are centred over the shared tokens before correlating: every embedding has a shared
mean direction that would otherwise make unrelated columns look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode

MIN_SHARED_TOKENS = 64


@dataclass(frozen=True)
class Alignment:
    """``a_dim[j]`` is the candidate (A) residual dimension matched to reference (B) dim ``j``
    (when A is at least as wide; else the roles swap, see ``a_is_base``), ``sign[j]`` its sign."""

    shared_tokens: int
    a_is_base: bool            # True when A is at least as wide as B
    target_to_base: np.ndarray  # for each dim of the narrower model, the matched wider dim
    sign: np.ndarray            # +1 / -1 per narrower dim
    matched_corr: np.ndarray    # |corr| of each match

    @property
    def strength(self) -> float:
        return float(np.mean(self.matched_corr))


def _embedding(fp: Fingerprint) -> tuple[list[str], np.ndarray] | None:
    entry = (fp.sketches or {}).get("embedding")
    if not entry:
        return None
    return list(entry["tokens"]), decode(entry)


def shared_embeddings(a: Fingerprint, b: Fingerprint) -> tuple[np.ndarray, np.ndarray] | None:
    """Embedding rows of the sampled tokens both models hold, in the same token order."""
    ea, eb = _embedding(a), _embedding(b)
    if ea is None or eb is None:
        return None
    index_b = {t: i for i, t in enumerate(eb[0])}
    pairs = [(i, index_b[t]) for i, t in enumerate(ea[0]) if t in index_b]
    if len(pairs) < MIN_SHARED_TOKENS:
        return None
    ia, ib = (np.array(x) for x in zip(*pairs, strict=True))
    return ea[1][ia], eb[1][ib]


def column_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``x`` with every column of ``y`` (float64)."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    nx = np.linalg.norm(xc, axis=0)
    ny = np.linalg.norm(yc, axis=0)
    nx[nx == 0] = 1.0
    ny[ny == 0] = 1.0
    return (xc / nx).T @ (yc / ny)


def match_columns(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match each column of the narrower ``y`` to a distinct column of ``x`` (``x`` at least as
    wide): returns (index into x per y column, sign, |corr|)."""
    corr = column_correlation(x, y)               # (d_x, d_y)
    rows, cols = linear_sum_assignment(-np.abs(corr).T)   # rows: y dims, cols: x dims
    order = np.argsort(rows)
    y_to_x = cols[order]
    matched = corr[y_to_x, np.arange(y.shape[1])]
    return y_to_x, np.where(matched < 0, -1.0, 1.0), np.abs(matched)


#: Recent alignments by fingerprint identity: several checks of one pair need the same one
#: (the d x d assignment is ~0.5 s at d = 2048, ~8x that at 4096). The entry holds the two
#: fingerprints, so their ids cannot be reused while it lives.
_RECENT: list[tuple[Fingerprint, Fingerprint, Alignment | None]] = []


def align(a: Fingerprint, b: Fingerprint) -> Alignment | None:
    """The residual alignment of A and B, or None without enough shared tokens."""
    for fa, fb, hit in _RECENT:
        if fa is a and fb is b:
            return hit
    result = _align(a, b)
    _RECENT.insert(0, (a, b, result))
    del _RECENT[4:]
    return result


def _align(a: Fingerprint, b: Fingerprint) -> Alignment | None:
    shared = shared_embeddings(a, b)
    if shared is None:
        return None
    xa, xb = shared
    a_is_base = xa.shape[1] >= xb.shape[1]
    base, target = (xa, xb) if a_is_base else (xb, xa)
    t2b, sign, corr = match_columns(base, target)
    for arr in (t2b, sign, corr):
        arr.setflags(write=False)  # shared by every check of the pair (see align)
    return Alignment(xa.shape[0], a_is_base, t2b, sign, corr)
