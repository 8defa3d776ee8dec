"""Residual-stream alignment of two models through their embeddings (AWM step 1).

Two models that share tokens can be put in one residual basis: take the embedding rows of
the tokens both vocabularies contain (by string), compare every residual dimension (column) of
one with every column of the other, and match them one-to-one with the linear assignment
problem on ``-|corr|`` (``scipy.optimize.linear_sum_assignment``), keeping each match's sign.
A derived model whose residual stream was permuted or sign-flipped is recovered exactly; a
width-pruned one maps into a subset of its parent's dimensions.

Columns are centred over the shared tokens before correlating: every embedding has a shared
mean direction that would otherwise make unrelated columns look alike.

A signed permutation is a special case of an orthogonal map. A copy whose residual stream was
*rotated* (QuaRot, SpinQuant and SliceGPT fold the norm gains and multiply the stream by an
orthogonal matrix ``Q``: ``E -> E Q``, readers ``W -> W Q``, writers ``W -> Q^T W``) keeps no
dimension in place, so the one-to-one match finds nothing. The alignment therefore also fits
the orthogonal Procrustes map ``M = argmin ||X_A M - X_B||_F`` over maps with orthonormal
columns (or rows, for a narrower A): with ``X_A^T X_B = U S V^T``, ``M = U V^T``. Both fits are
made on the centred shared-token embeddings scaled to unit Frobenius norm (so an embedding
scaled by a constant fits alike), and their relative residuals are kept. The streams count as
rotated (:attr:`Alignment.rotated`) when the rotation explains the embeddings and the best
signed permutation does not (residual >= 0.5): for derivatives the fitted rotation leaves only
quantisation and fine-tuning noise (0.005-0.02 on the real models), for independent models
0.39-0.94 (an orthogonal map preserves the Gram matrix of the tokens, so even with fewer tokens than
dimensions it cannot fit unrelated embeddings), while the best signed permutation of a rotated
copy leaves ~1.2, the level of unrelated columns. The map itself is used on weights only when
it is *determined* -- at least as many shared tokens as residual dimensions; the fingerprint
samples 1024 tokens, so for wider models :func:`align_views` reads more embedding rows of
shared tokens from the full weights when both models have them. The choice looks at embeddings
only, never at hidden units, so the hidden-unit tests that use the map keep their validity
(``checks/unit_matching.py``).
"""

from __future__ import annotations

import hashlib
import heapq
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelprint._lsap import linear_sum_assignment
from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode
from modelprint.fingerprint.tokens import first_ids

if TYPE_CHECKING:
    from modelprint.checks.base import ModelView

MIN_SHARED_TOKENS = 64
#: The rotation is used when its fit residual is at most this ... (measured on the real
#: models: derivatives 0.005-0.02, independent pairs 0.39-0.94 however few the shared tokens)
ROTATION_MAX_RESIDUAL = 0.25
#: ... while the best signed permutation leaves at least this (a permuted or untouched
#: derivative leaves 0.01-0.02, where a rotation fits the noise a little better still).
PERMUTATION_MIN_RESIDUAL = 0.5
#: Tokens the rotated/not decision is made on (the map itself uses every shared token).
SCREEN_TOKENS = 256


@dataclass(frozen=True)
class Alignment:
    """``a_dim[j]`` is the candidate (A) residual dimension matched to reference (B) dim ``j``
    (when A is at least as wide; else the roles swap, see ``a_is_base``), ``sign[j]`` its sign."""

    shared_tokens: int
    a_is_base: bool            # True when A is at least as wide as B
    target_to_base: np.ndarray  # for each dim of the narrower model, the matched wider dim
    sign: np.ndarray            # +1 / -1 per narrower dim
    matched_corr: np.ndarray    # |corr| of each match
    #: Orthogonal Procrustes map (d_A x d_B): a row vector over A's residual dims, times this,
    #: is the same vector in B's basis. None when not determined (fewer tokens than dims).
    procrustes: np.ndarray | None = None
    #: Relative residuals ||X_A M - X_B|| / ||X_B|| of the signed-permutation and rotation fits.
    permutation_residual: float = float("nan")
    rotation_residual: float | None = None

    @property
    def strength(self) -> float:
        return float(np.mean(self.matched_corr))

    @property
    def rotated(self) -> bool:
        """True when the residual streams differ by a rotation, not a signed permutation."""
        r = self.rotation_residual
        return is_rotation(r, self.permutation_residual)

    @property
    def determined(self) -> bool:
        """The fitted rotation can map weights: the shared tokens span the residual space."""
        return self.procrustes is not None

    def describe(self) -> str:
        """The residual basis in words, for the report."""
        perm = f"a signed permutation leaves {self.permutation_residual:.3f}"
        if self.rotated:
            return (f"residual stream rotated: orthogonal fit residual "
                    f"{self.rotation_residual:.3g} on {min(self.shared_tokens, SCREEN_TOKENS)} "
                    f"of {self.shared_tokens} shared tokens ({perm})")
        rot = ("" if self.rotation_residual is None else
               f"; an orthogonal fit leaves {self.rotation_residual:.3f}")
        return (f"shared-token embedding alignment ({self.shared_tokens} tokens; signed "
                f"permutation of residual dimensions, fit residual "
                f"{self.permutation_residual:.3f}{rot})")


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
#: Held while an alignment is looked up or computed: checks of one pair run side by side
#: (``engine.session.CHECK_THREADS``) and would otherwise each fit the same alignment.
_LOCK = threading.RLock()


def align(a: Fingerprint, b: Fingerprint) -> Alignment | None:
    """The residual alignment of A and B, or None without enough shared tokens."""
    with _LOCK:
        for fa, fb, hit in _RECENT:
            if fa is a and fb is b:
                return hit
        result = _align(a, b)
        _RECENT.insert(0, (a, b, result))
        del _RECENT[4:]
        return result


def is_rotation(rotation_residual: float | None, permutation_residual: float) -> bool:
    """The rule: an orthogonal map fits, a signed permutation does not."""
    return (rotation_residual is not None and rotation_residual <= ROTATION_MAX_RESIDUAL
            and permutation_residual >= PERMUTATION_MIN_RESIDUAL)


def _normalised(x: np.ndarray) -> np.ndarray:
    """Columns centred, whole matrix scaled to unit Frobenius norm."""
    xc = x - x.mean(axis=0)
    n = float(np.linalg.norm(xc))
    return xc / n if n > 0 else xc


def permutation_residual(xa: np.ndarray, xb: np.ndarray, t2b: np.ndarray, sign: np.ndarray,
                         a_is_base: bool) -> float:
    """Relative residual of the signed column match as a map from A's basis into B's
    (``O(n d)``: the map is a selection, never formed as a matrix)."""
    den = float(np.linalg.norm(xb))
    if den == 0:
        return float("nan")
    if a_is_base:                     # every B dim j has A dim t2b[j]
        return float(np.linalg.norm(xa[:, t2b] * sign - xb) / den)
    matched = np.linalg.norm(xa * sign - xb[:, t2b]) ** 2   # A dim j -> B dim t2b[j]
    rest = np.ones(xb.shape[1], dtype=bool)
    rest[t2b] = False
    return float(np.sqrt(matched + np.linalg.norm(xb[:, rest]) ** 2) / den)


def procrustes(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """``argmin ||xa M - xb||_F`` over partial isometries M (orthogonal Procrustes): the
    (d_A x d_B) map, from the SVD of ``xa^T xb`` -- O(d^3), used only for a rotated pair."""
    u, _, vt = np.linalg.svd(xa.T @ xb, full_matrices=False)
    return np.asarray(u @ vt)


def procrustes_residual(xa: np.ndarray, xb: np.ndarray) -> float:
    """The relative residual of the Procrustes fit without forming the d x d map.

    With ``xa^T = Q_a R_a`` and ``xb^T = Q_b R_b`` (thin QR), ``xa^T xb = Q_a (R_a R_b^T) Q_b^T``,
    so the optimal map is ``Q_a U V^T Q_b^T`` for the SVD ``U S V^T`` of the small core and the
    residual is ``||R_a^T U V^T - R_b^T||``: O(n^2 d) for n tokens instead of O(d^3).
    """
    den = float(np.linalg.norm(xb))
    if den == 0:
        return float("nan")
    _, ra = np.linalg.qr(xa.T)
    _, rb = np.linalg.qr(xb.T)
    u, _, vt = np.linalg.svd(ra @ rb.T, full_matrices=False)
    return float(np.linalg.norm(ra.T @ u @ vt - rb.T) / den)


def fit_residual(xa: np.ndarray, xb: np.ndarray, m: np.ndarray) -> float:
    den = float(np.linalg.norm(xb))
    return float(np.linalg.norm(xa @ m - xb) / den) if den > 0 else float("nan")


def _align(a: Fingerprint, b: Fingerprint) -> Alignment | None:
    shared = shared_embeddings(a, b)
    if shared is None:
        return None
    return alignment_of(*shared)


def alignment_of(xa: np.ndarray, xb: np.ndarray) -> Alignment:
    """Both fits for the embedding rows ``xa``, ``xb`` of the same tokens."""
    a_is_base = xa.shape[1] >= xb.shape[1]
    base, target = (xa, xb) if a_is_base else (xb, xa)
    t2b, sign, corr = match_columns(base, target)
    # the decision is made on a fixed screen of SCREEN_TOKENS tokens (the sample is in
    # sha256 order, so its head is a random subset): cheap at any width, and the residual
    # separates as well there (real models: independent 0.39-0.57 at 128-256 tokens)
    k = min(len(xa), SCREEN_TOKENS)
    sa, sb = _normalised(xa[:k]), _normalised(xb[:k])
    perm_res = permutation_residual(sa, sb, t2b, sign, a_is_base)
    rot_res = procrustes_residual(sa, sb)
    rot = None
    # the map is needed only for a rotated pair, and determined only when the (centred)
    # tokens span the residual space
    if is_rotation(rot_res, perm_res) and xa.shape[0] - 1 >= max(xa.shape[1], xb.shape[1]):
        rot = procrustes(_normalised(xa), _normalised(xb))
    for arr in (t2b, sign, corr, rot):
        if arr is not None:
            arr.setflags(write=False)  # shared by every check of the pair (see align)
    return Alignment(xa.shape[0], a_is_base, t2b, sign, corr, rot, perm_res, rot_res)


def align_views(a: ModelView, b: ModelView) -> Alignment | None:
    """:func:`align` of the fingerprints, refitted on more shared tokens read from the full
    weights when the streams are rotated but the fingerprints' sample cannot determine the map
    (models wider than ~1000 dimensions)."""
    al = align(a.fingerprint, b.fingerprint)
    if al is None or not al.rotated or al.determined or a.weights is None or b.weights is None:
        return al
    with _LOCK:
        for va, vb, hit in _WIDE:
            if va is a and vb is b:
                return hit
        wide = _wide_alignment(a, b)
        result = wide if wide is not None else al
        _WIDE.insert(0, (a, b, result))
        del _WIDE[2:]
        return result


_WIDE: list[tuple[ModelView, ModelView, Alignment]] = []


def _vocabulary(w: Any) -> list[str] | None:
    for get in (getattr(w, "vocabulary", None), getattr(getattr(w, "source", None),
                                                         "vocabulary", None)):
        if callable(get):
            vocab = get()
            return list(vocab) if vocab else None
    return None


def _wide_alignment(a: ModelView, b: ModelView) -> Alignment | None:
    """The alignment on ``2 d + 64`` shared tokens (bottom-k by sha256 of the canonical
    string, as the fingerprint samples them) read from both models' embeddings."""
    va, vb = _vocabulary(a.weights), _vocabulary(b.weights)
    if not va or not vb:
        return None
    d = max(a.fingerprint.architecture.hidden_size, b.fingerprint.architecture.hidden_size)
    ids_a = first_ids(va)
    ids_b = first_ids(vb)
    shared = ids_a.keys() & ids_b.keys()
    k = 2 * d + 64
    sha = hashlib.sha256
    picked = heapq.nsmallest(k, shared, key=lambda t: sha(t.encode("utf-8", "replace")).digest())
    if len(picked) - 1 < d:
        return None
    rows = []
    for view, ids in ((a, ids_a), (b, ids_b)):
        idx = np.array([ids[t] for t in picked], dtype=np.int64)
        order = np.argsort(idx)
        assert view.weights is not None
        got = view.weights.rows("embed", None, idx[order])
        if got is None:
            return None
        x = np.empty((len(idx), got.shape[1]), dtype=np.float64)
        x[order] = got
        rows.append(x)
    return alignment_of(rows[0], rows[1])


def undetermined_rotation(al: Alignment | None) -> str | None:
    """Why a rotation that was detected cannot be undone on the weights, or None."""
    if al is None or not al.rotated or al.determined:
        return None
    return (f"{al.describe()}, but {al.shared_tokens} shared tokens cannot determine a rotation "
            "of this many residual dimensions (full weights and vocabularies of both models "
            "let modelprint read more)")


def blind_to_rotation(a: Fingerprint, b: Fingerprint) -> str | None:
    """Why a check that compares residual dimensions index by index learns nothing from a
    negative result -- the streams are rotated against each other -- or None."""
    al = align(a, b)
    if al is None or not al.rotated:
        return None
    return (f"{al.describe()}; a comparison of residual dimensions by index cannot see a "
            "rotated copy (the hidden-unit checks undo the rotation)")
