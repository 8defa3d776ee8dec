"""Canonical weights: norm gains folded into the matrices that read the normed stream.

A pre-norm block computes ``W (g * x / rms(x))``: the gain ``g`` of the norm can be moved into
``W`` (``W' = W diag(g)``, ``g' = 1``) without changing the function. QuaRot, SpinQuant and
SliceGPT do exactly that before rotating the residual stream (a rotation commutes with the
normalisation only once the gains are 1), so released models carry it. The checks that compare
matrices over the residual axis therefore compare ``W diag(g)`` on both sides: a folded copy
and its original then have the same canonical weights, and a model whose gains were not
touched compares as before up to a per-dimension scale shared by both sides.

Which norm feeds which matrix: ``norm.attn`` feeds Q, K and V; ``norm.mlp`` feeds the MLP's
gate and up projections (and the experts and router of a mixture-of-experts layer). Gains are
the fingerprint's effective gains (Gemma's ``1 + w`` already added). Post-norm families (BERT:
``norm.attn`` sits *after* attention) have no such reader relation and are left as stored.
The raw gains stay in the fingerprint for the seed's ``layernorm`` check.

Folding is a function of one model at a time and commutes with any permutation of its residual
dimensions or hidden units, so the exchangeability arguments behind the p-values
(``unit_matching.py``, ``permutation.py``) hold for canonical weights exactly as for raw ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelprint.fingerprint.model import Fingerprint

if TYPE_CHECKING:
    from modelprint.checks.unit_matching import ResidualMap

#: Families whose norms follow, not precede, the blocks (no reader to fold into).
POST_NORM_FAMILIES = frozenset({"bert"})

#: The norm whose output each reader role multiplies.
READER_NORM: dict[str, str] = {
    "attn.q": "norm.attn", "attn.k": "norm.attn", "attn.v": "norm.attn",
    "mlp.gate": "norm.mlp", "mlp.up": "norm.mlp",
    "moe.expert.gate": "norm.mlp", "moe.expert.up": "norm.mlp", "moe.router": "norm.mlp",
}


def reader_gain(fp: Fingerprint, role: str, layer: int | None) -> np.ndarray | None:
    """The effective norm gain that ``role`` of ``layer`` reads through, or None (no norm,
    a post-norm family, or gains that are not finite)."""
    norm = READER_NORM.get(role)
    if norm is None or layer is None or fp.architecture.family in POST_NORM_FAMILIES:
        return None
    vec = fp.vector(norm, layer)
    if vec is None:
        return None
    g = np.asarray(vec, dtype=np.float64)
    return g if g.ndim == 1 and np.all(np.isfinite(g)) else None


def fold_columns(m: np.ndarray, gain: np.ndarray | None, cols: np.ndarray | None = None
                 ) -> np.ndarray:
    """``m`` (rows x residual columns ``cols``, all columns when None) times ``diag(gain)``."""
    if gain is None:
        return m
    g = gain if cols is None else gain[np.asarray(cols)]
    if g.shape[0] != m.shape[-1]:
        return m  # a gain of another width (should not happen): leave the stored values
    dtype = m.dtype if m.dtype.kind == "f" else np.dtype(np.float64)
    gmax = float(np.abs(g).max()) if g.size else 0.0
    if gmax > 1.0 and m.size and gmax * max(float(m.max()), -float(m.min())) > float(
            np.finfo(dtype).max):
        dtype = np.dtype(np.float64)   # a large gain on large weights: no Inf in the fold
    return m.astype(dtype, copy=False) * g.astype(dtype)


def folded_side(a: Fingerprint, b: Fingerprint) -> str | None:
    """Which model ("candidate"/"reference") has every pre-norm gain exactly 1 while the other
    has not: the signature of gains folded into the weights. None otherwise."""
    def unit(fp: Fingerprint) -> bool | None:
        if fp.architecture.family in POST_NORM_FAMILIES:
            return None
        seen = False
        for norm in ("norm.attn", "norm.mlp"):
            for vec in fp.vectors.get(norm) or []:
                if vec is None:
                    continue
                seen = True
                if any(v != 1.0 for v in vec):
                    return False
        return True if seen else None

    ua, ub = unit(a), unit(b)
    if ua is None or ub is None or ua == ub:
        return None
    return "candidate" if ua else "reference"


def disguises(a: Fingerprint, b: Fingerprint, rmap: ResidualMap | None) -> list[str]:
    """The function-preserving re-parameterisations the comparison undid, in words."""
    out = []
    side = folded_side(a, b)
    if side is not None:
        out.append(f"the {side}'s norm gains are folded into its weights (compared in "
                   "canonical form)")
    if rmap is not None and rmap.rotation is not None:
        out.append(rmap.basis)
    return out
