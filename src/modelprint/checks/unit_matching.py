"""Hidden-unit matching with exact-tail p-values, shared by ``mlp_matching`` and ``moe_upcycling``.

Under the null hypothesis of Zhu et al. (arXiv 2502.12292) -- independent random initialisation,
permutation-equivariant training -- the order of one model's MLP hidden units relative to the
other's is uniformly random. Any matching computed from the weights (linear assignment on
cosine) is then a uniformly random injection as seen from the other model's unit indices, so
the Spearman correlation between the queried units' order and their matched indices has the
null distribution of a random permutation. A derived model keeps its units in place (or, when
pruned, in their kept order), which drives rho to 1.

Numbers are kept as natural-log p-values so that very small p-values stay exact instead of
underflowing: the Spearman tail uses the usual t approximation but is never allowed below
``1/n!``, the smallest p-value a permutation test over ``n`` units can give; Fisher's
combination uses the closed form of the chi-square tail for even degrees of freedom.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from modelprint._lsap import linear_sum_assignment
from modelprint._tails import average_ranks, t_logsf
from modelprint.checks.alignment import Alignment
from modelprint.checks.cka import Gram, hsic_u

#: Smallest positive normal float64: p-values are floored here when reported as floats.
P_FLOOR = float(np.finfo(np.float64).tiny)
LN10 = math.log(10.0)


def seeded_rng(*parts: object) -> np.random.Generator:
    """A RNG that depends only on ``parts`` (reproducible subsamples, no global state)."""
    text = "modelprint-units:" + ":".join(str(p) for p in parts)
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8],
                                                "little"))


def spearman_logp(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rho of ``x`` and ``y`` and the natural log of its one-sided (rho > 0) p-value.

    The t approximation is used for the tail, floored at ``-ln(n!)``: no permutation test
    over ``n`` items can give less, and the approximation would otherwise report impossible
    values (``-inf`` at rho = 1). Fewer than 3 items or no variation: (0, 0).
    """
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0, 0.0
    rx, ry = average_ranks(x), average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if den == 0.0:
        return 0.0, 0.0
    rho = float(rx @ ry) / den
    rho = min(1.0, max(-1.0, rho))
    floor = -math.lgamma(n + 1)
    if rho >= 1.0 - 1e-12:
        return 1.0, floor
    t = rho * math.sqrt((n - 2) / max(1.0 - rho * rho, 1e-300))
    logp = t_logsf(t, n - 2)
    return rho, max(logp, floor)


def fisher_logp(logps: Sequence[float]) -> float:
    """ln p of Fisher's combination of independent p-values given as ln p (df = 2k).

    For even df the chi-square tail is ``exp(-x/2) * sum_{j<k} (x/2)^j / j!``, summed in log
    space, so no result underflows.
    """
    k = len(logps)
    if k == 0:
        return 0.0
    half = -float(np.sum(logps))        # x / 2
    if half <= 0.0:
        return 0.0
    j = np.arange(k, dtype=np.float64)
    terms = j * math.log(half) - np.array([math.lgamma(v + 1) for v in j])
    top = float(terms.max())
    return float(min(0.0, -half + top + math.log(float(np.exp(terms - top).sum()))))


def bonferroni_logp(logps: Sequence[float]) -> float:
    """ln of ``min(1, m * min p)``: valid whatever the dependence between the tests."""
    if not logps:
        return 0.0
    return float(min(0.0, math.log(len(logps)) + min(logps)))


def to_p(logp: float) -> float:
    """A float p-value from ln p, floored at :data:`P_FLOOR` (its exact value stays in ln p)."""
    return float(max(math.exp(logp), P_FLOOR)) if logp > -700 else P_FLOOR


@dataclass(frozen=True)
class SideMap:
    """How to read one side's vectors over residual dimensions into the common basis: the
    stored columns ``dims`` (all when None), times ``sign``, then times ``post`` (a rotation
    restricted to the common dims) when given."""

    dims: np.ndarray | None
    sign: np.ndarray | None = None
    post: np.ndarray | None = None

    def apply(self, m: np.ndarray) -> np.ndarray:
        """``m`` holds the columns ``dims`` already (units x len(dims))."""
        if self.sign is not None:
            m = m * self.sign.astype(np.float32)
        if self.post is not None:
            m = np.asarray(m, dtype=np.float32) @ self.post.astype(np.float32)
        return m


@dataclass(frozen=True)
class ResidualMap:
    """Paired residual dimensions: column ``a_dims[k]`` of A equals ``sign[k]`` times column
    ``b_dims[k]`` of B (as far as the embedding alignment can tell).

    When the alignment found a rotated residual stream, ``rotation`` (d_A x d_B) is set: A's
    vectors over *all* its residual dimensions are mapped into B's basis (``v @ rotation``)
    and compared on B's dimensions ``b_dims``; ``a_dims`` and ``sign`` are then unused."""

    a_dims: np.ndarray
    b_dims: np.ndarray
    sign: np.ndarray
    basis: str
    rotation: np.ndarray | None = None

    @classmethod
    def from_alignment(cls, al: Alignment | None, width_a: int, width_b: int) -> ResidualMap | None:
        """The map from an embedding alignment, the identity for equal widths without one, or
        None (no common basis)."""
        if al is None:
            if width_a != width_b:
                return None
            ident = np.arange(width_a)
            return cls(ident, ident, np.ones(width_a), "identity (no shared-token embeddings; "
                                                       "equal widths)")
        if al.rotated and al.procrustes is not None and al.procrustes.shape == (width_a,
                                                                                width_b):
            return cls(np.arange(width_a), np.arange(width_b), np.ones(width_b),
                       al.describe(), al.procrustes)
        narrow = np.arange(len(al.target_to_base))
        wide = np.asarray(al.target_to_base)
        a_dims, b_dims = (wide, narrow) if al.a_is_base else (narrow, wide)
        return cls(a_dims, b_dims, np.asarray(al.sign, dtype=np.float64), al.describe())

    def subsample(self, k: int) -> ResidualMap:
        """At most ``k`` of the pairs (a fixed, seeded choice): cosines over a random subset of
        residual dimensions rank units almost as well, at a fraction of the cost. Under a
        rotation the subset is of B's dimensions (A is read whole and rotated)."""
        if len(self.b_dims) <= k:
            return self
        pick = np.sort(seeded_rng("dims", len(self.b_dims), k).choice(len(self.b_dims), k,
                                                                     replace=False))
        if self.rotation is not None:
            return ResidualMap(self.a_dims, self.b_dims[pick], self.sign[pick], self.basis,
                               self.rotation)
        return ResidualMap(self.a_dims[pick], self.b_dims[pick], self.sign[pick], self.basis)

    def side_a(self) -> SideMap:
        if self.rotation is not None:
            return SideMap(None, None, self.rotation[:, self.b_dims])
        return SideMap(self.a_dims, self.sign)

    def side_b(self) -> SideMap:
        return SideMap(self.b_dims)

    def within(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For two sketches sampled at the same columns ``cols``: positions (into ``cols``) of
        the A and B columns that are paired with each other, and their signs. None are under
        a rotation: a rotated vector needs every residual dimension, a sketch has 64."""
        if self.rotation is not None:
            empty = np.array([], dtype=np.int64)
            return empty, empty, np.array([])
        where = {int(c): i for i, c in enumerate(cols)}
        ia, ib, sg = [], [], []
        for a, b, s in zip(self.a_dims, self.b_dims, self.sign, strict=True):
            if int(a) in where and int(b) in where:
                ia.append(where[int(a)])
                ib.append(where[int(b)])
                sg.append(s)
        return np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64), np.array(sg)


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 for the big products.

    A row whose norm overflows float32 (finite values near the top of the range: a large
    folded gain) is first divided by its largest magnitude in float64, since a row's
    direction is all a cosine reads; ordinary rows take the plain float32 path."""
    src = np.asarray(m)
    with np.errstate(over="ignore"):
        x = src.astype(np.float32, copy=False)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.isfinite(norm).all():
        w = src.astype(np.float64)
        peak = np.maximum(w.max(axis=1, keepdims=True), -w.min(axis=1, keepdims=True))
        peak[peak == 0] = 1.0
        x = (w / peak).astype(np.float32)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return x / norm


def cosine(qa: Sequence[np.ndarray], tb: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over views of the row cosines: ``views[k]`` of the query side (units x dims) against
    the same view of the target side. float64 result."""
    total = np.zeros((qa[0].shape[0], tb[0].shape[0]), dtype=np.float64)
    for x, y in zip(qa, tb, strict=True):
        total += unit_rows(x) @ unit_rows(y).T
    return total / len(qa)


def assign(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular linear assignment maximising total cosine: for every query row (rows <=
    columns), its matched target index and the matched cosine."""
    rows, cols = linear_sum_assignment(c, maximize=True)
    matched = np.empty(c.shape[0], dtype=np.int64)
    matched[rows] = cols
    return matched, c[np.arange(c.shape[0]), matched]


def subsample_units(n: int, k: int, *key: object) -> np.ndarray:
    """Sorted indices of at most ``k`` of ``n`` units (seeded by ``key``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(seeded_rng("units", n, k, *key).choice(n, k, replace=False))


def describe_indices(idx: np.ndarray, total: int) -> str:
    """'units 384-767 (a contiguous 1/4 slice)' style text for matched target indices."""
    if len(idx) == 0:
        return "none"
    lo, hi = int(idx.min()), int(idx.max())
    span = hi - lo + 1
    text = f"units {lo}-{hi} of {total}"
    if span == len(idx) and len(idx) < total:
        frac = total / len(idx)
        text += (f" (a contiguous 1/{round(frac)} slice)" if abs(frac - round(frac)) < 1e-9
                 else " (a contiguous block)")
    elif span == len(idx):
        text += " (all, one to one)"
    return text


def layer_similarity(xa: dict[int, np.ndarray], xb: dict[int, np.ndarray],
                     layers_a: list[int], layers_b: list[int]) -> np.ndarray:
    """Linear CKA between layers, residual dimensions as samples: ``x[layer]`` is (dims x
    features), e.g. ``W^T R`` for a unit matrix ``W`` and a random projection ``R`` of its unit
    axis. Invariant to the order of hidden units, so it finds related layers even when the
    units were permuted."""
    sim = np.zeros((len(layers_a), len(layers_b)))
    ga = {i: Gram(xa[i]) for i in layers_a}
    gb = {j: Gram(xb[j]) for j in layers_b}
    if any(g.n < 4 for g in (*ga.values(), *gb.values())):
        # the unbiased estimator needs 4 samples: e.g. two sketches of different widths
        # that share only a few residual dimensions -- no similarity information
        return sim
    sa = {i: hsic_u(g, g) for i, g in ga.items()}
    sb = {j: hsic_u(g, g) for j, g in gb.items()}
    for r, i in enumerate(layers_a):
        for c, j in enumerate(layers_b):
            den = sa[i] * sb[j]
            if den > 0:
                sim[r, c] = hsic_u(ga[i], gb[j]) / math.sqrt(den)
    return sim


def unit_projection(w: np.ndarray, k: int = 64) -> np.ndarray:
    """``W^T R / sqrt(k)`` for a (units x dims) matrix, ``R`` seeded by the unit count: a
    (dims x k) summary whose Gram approximates ``W^T W`` whatever the order of the units."""
    return np.asarray(w, dtype=np.float64).T @ _projection(w.shape[0], k)


@lru_cache(maxsize=8)
def _projection(units: int, k: int) -> np.ndarray:
    """``R / sqrt(k)``, drawn once per unit count: every layer of a model has the same count,
    and drawing it (2.6 ms) cost more than the product it feeds (0.9 ms for 1536 units)."""
    r = seeded_rng("proj", units, k).normal(size=(units, k)) / math.sqrt(k)
    r.flags.writeable = False
    return r


def components(pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Groups of pair positions that share a layer on either side.

    Under the null the unit order of every layer is an independent draw, so tests on pairs
    that share no layer are independent (Fisher may combine them) while tests sharing a layer
    are not (they are combined with Bonferroni first)."""
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen_a: dict[int, int] = {}
    seen_b: dict[int, int] = {}
    for k, (la, lb) in enumerate(pairs):
        for seen, layer in ((seen_a, la), (seen_b, lb)):
            if layer in seen:
                parent[find(k)] = find(seen[layer])
            else:
                seen[layer] = k
    groups: dict[int, list[int]] = {}
    for k in range(len(pairs)):
        groups.setdefault(find(k), []).append(k)
    return list(groups.values())


#: A layer-by-layer check stops once its combined p, Bonferroni-corrected over the places it
#: could have stopped, is below this (and 20 orders of magnitude below its alpha).
STOP_P = 1e-30


class EarlyStop:
    """Sequential testing over ``looks`` layer pairs, valid as it stands.

    After each layer pair the combined ln p so far is compared with ``ln min(STOP_P, alpha *
    1e-20)`` after adding ``ln looks``; once below, the remaining layers are skipped and every
    p-value reported from the layers seen is multiplied by ``looks`` (:meth:`correct`). Under
    independence the chance that *any* of the ``looks`` interim p-values falls below ``c`` is at
    most ``looks * c`` (Bonferroni), so the corrected value is a valid p-value; a run that never
    stops reports the fixed-sample value over all layers, whose false-positive rate the rule
    raises by at most ``looks * STOP_P``. What it saves: a copy is certain after a layer or two,
    and matching every expert of every layer was 2.8 s of the 3.6 s warm compare of the MoE
    pair in benchmarks/peers.
    """

    def __init__(self, looks: int, alpha: float, enabled: bool = True) -> None:
        self.looks = max(1, looks)
        self.enabled = enabled
        self.level = math.log(min(STOP_P, alpha * 1e-20))
        self.stopped_after: int | None = None

    def should_stop(self, done: int, logp: float) -> bool:
        """``logp``: the combined ln p after ``done`` of the looks."""
        if self.enabled and done < self.looks and logp + math.log(self.looks) <= self.level:
            self.stopped_after = done
        return self.stopped_after is not None

    def correct(self, logp: float) -> float:
        return min(0.0, logp + math.log(self.looks)) if self.stopped_after else logp

    def to_json(self, done: int) -> dict[str, Any]:
        return {"compared": done, "of": self.looks, "early_stop": self.stopped_after is not None,
                "rule": f"stop once the combined p x {self.looks} < {math.exp(self.level):.0e}; "
                        f"the p-values are then multiplied by {self.looks} (Bonferroni over "
                        "the places the run could have stopped)"}


def combine(pairs: Sequence[tuple[int, int]], logps: Sequence[float]) -> tuple[float, int]:
    """ln p over all layer pairs: Bonferroni within groups sharing a layer, Fisher across
    groups. Returns (ln p, number of independent groups)."""
    groups = components(pairs)
    return fisher_logp([bonferroni_logp([logps[k] for k in g]) for g in groups]), len(groups)


def two_arms(pairs: Sequence[tuple[int, int]], order: Sequence[float],
             consistency: Sequence[float]) -> tuple[float, float, int]:
    """The order and consistency arms of a unit matching over the layer pairs so far, each
    :func:`combine`-d (ln p), and the number of independent groups; shared by mlp_matching
    and moe_upcycling, whose arms are then Bonferroni-combined."""
    order_logp, groups = combine(pairs, order)
    return order_logp, combine(pairs, consistency)[0], groups
