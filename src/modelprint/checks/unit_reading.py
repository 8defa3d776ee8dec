"""Reading MLP hidden units of one model as matching "views", and matching one pair of layers.

A hidden unit is row ``u`` of the up (and gate) projection and column ``u`` of the down
projection. Each of these is a *view* of the unit: a vector over residual dimensions. Views are
read with the residual axis put in the common basis of :class:`~.unit_matching.ResidualMap`,
from full weights when both models have them, else from the fingerprints' matrix sketches
(64 sampled units at the same positions in both models when the shapes agree).

Shared by ``mlp_matching`` (dense vs dense) and ``moe_upcycling`` (experts vs dense).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelprint.checks.alignment import align_views, undetermined_rotation
from modelprint.checks.base import ModelView
from modelprint.checks.canonical import fold_columns, reader_gain
from modelprint.checks.unit_matching import (
    ResidualMap,
    SideMap,
    assign,
    cosine,
    spearman_logp,
    subsample_units,
    unit_projection,
)
from modelprint.fingerprint.sketches import decode

DENSE = {"up": "mlp.up", "gate": "mlp.gate", "down": "mlp.down"}
EXPERT = {"up": "moe.expert.up", "gate": "moe.expert.gate", "down": "moe.expert.down"}

Slot = tuple[int | None, int | None]   # (layer, expert)


def _key(text: str) -> tuple[str, int | None, int | None]:
    role, layer, expert = text.split("|")
    return role, None if layer == "-" else int(layer), None if expert == "-" else int(expert)


class UnitSide:
    """One model's MLP units under one role family (dense ``mlp.*`` or ``moe.expert.*``)."""

    def __init__(self, view: ModelView, roles: dict[str, str]) -> None:
        self.view = view
        self.roles = roles
        fp = view.fingerprint
        self.shapes = {(t.role, t.layer, t.expert): tuple(int(v) for v in t.shape)
                       for t in fp.tensors if len(t.shape) == 2}
        self.sketches = {_key(k): v for k, v in
                         ((fp.sketches or {}).get("matrix") or {}).items()}

    def units(self, layer: int | None, expert: int | None) -> int | None:
        shape = self.shapes.get((self.roles["up"], layer, expert))
        return shape[0] if shape else None

    def width(self) -> int | None:
        for (role, _, _), shape in self.shapes.items():
            if role == self.roles["up"]:
                return shape[1]
        return None

    def layers(self) -> list[int]:
        return sorted({layer for (role, layer, _) in self.shapes
                       if role == self.roles["up"] and layer is not None})

    def experts(self, layer: int) -> list[int | None]:
        return sorted((e for (role, lay, e) in self.shapes if role == self.roles["up"]
                       and lay == layer), key=lambda e: -1 if e is None else e)

    def kinds(self, layer: int | None, expert: int | None) -> set[str]:
        """Views present with shapes consistent with the up projection."""
        up = self.shapes.get((self.roles["up"], layer, expert))
        if up is None:
            return set()
        out = {"up"}
        if self.shapes.get((self.roles["gate"], layer, expert)) == up:
            out.add("gate")
        if self.shapes.get((self.roles["down"], layer, expert)) == (up[1], up[0]):
            out.add("down")
        return out

    def gain(self, kind: str, layer: int) -> np.ndarray | None:
        """The norm gain folded into a reader view (``checks/canonical.py``); None for down."""
        if kind == "down":
            return None
        return reader_gain(self.view.fingerprint, self.roles[kind], layer)

    def full_views(self, kinds: list[str], layer: int, expert: int | None,
                   units: np.ndarray | None, side: SideMap) -> list[np.ndarray]:
        """(units x common dims) float32 matrices, one per view kind, in canonical form (norm
        gains folded into up/gate). Only what is used is read and converted: the paired
        residual dims (columns of up/gate, rows of down; every dim under a rotation) and, for
        a unit subset, its up/gate rows (gathered and decoded once) or down columns."""
        w = self.view.weights
        assert w is not None
        out = []
        for kind in kinds:
            role = self.roles[kind]
            if kind == "down":  # units are columns: the paired dims' rows, unit columns
                m = (w.rows(role, layer, side.dims, expert, cols=units) if side.dims is not None
                     else w.get(role, layer, expert, cols=units))
                assert m is not None
                m = m.T
            else:  # only the paired residual dims are read (converted) at all
                m = (w.get(role, layer, expert, cols=side.dims) if units is None
                     else w.rows(role, layer, units, expert, cols=side.dims))
                assert m is not None
                m = fold_columns(m, self.gain(kind, layer), side.dims)
            out.append(np.asarray(side.apply(m), dtype=np.float32))
        return out

    def sketch(self, kind: str, layer: int, expert: int | None) -> dict[str, Any] | None:
        return self.sketches.get((self.roles[kind], layer, expert))

    def sketch_values(self, kind: str, layer: int, expert: int | None) -> np.ndarray | None:
        """A sketch's sampled sub-matrix in canonical form (gains folded on its columns)."""
        entry = self.sketch(kind, layer, expert)
        if entry is None:
            return None
        return fold_columns(decode(entry), self.gain(kind, layer), np.asarray(entry["cols"]))

    def summary(self, layer: int, side: SideMap | tuple[np.ndarray, np.ndarray | None],
                full: bool, max_experts: int) -> np.ndarray | None:
        """A unit-order-invariant (paired dims x features) summary of a layer's up projection
        (all its experts stacked), for layer-by-layer similarity. ``side`` is the full-weight
        reading map, or (sketch column positions, signs) on the sketch path."""
        mats = []
        for e in self.experts(layer)[:max_experts]:
            if full:
                assert isinstance(side, SideMap)
                mats.append(self.full_views(["up"], layer, e, None, side)[0])
            else:
                assert isinstance(side, tuple)
                values = self.sketch_values("up", layer, e)
                if values is None:
                    continue
                dims, sign = side
                m = values[:, dims]
                mats.append(m * sign if sign is not None else m)
        if not mats:
            return None
        stacked = np.concatenate(mats, axis=0)
        return unit_projection(stacked) if full else stacked.T.astype(np.float64)


@dataclass
class UnitMatch:
    """The matching of one query unit set (the side with fewer units) into the other side."""

    query_side: str            # "a" or "b"
    query: np.ndarray          # unit indices queried (sorted)
    matched: np.ndarray        # matched index on the other side, per query unit
    matched_cos: np.ndarray
    runner_up_cos: np.ndarray  # second-best cosine per query unit (a chance-level reference)
    n_query_side: int
    n_target_side: int
    rho: float
    logp: float
    per_view: list[np.ndarray]  # best match per query unit for each view on its own
    #: Spearman of the first two views' own best matches (phi_MATCH-style, invariant to a
    #: permutation of the units): (0, 0) with fewer than two views
    consistency_rho: float = 0.0
    consistency_logp: float = 0.0

    @property
    def identity_fraction(self) -> float:
        return float(np.mean(self.matched == self.query))


def residual_map(a: ModelView, b: ModelView, sa: UnitSide, sb: UnitSide) -> ResidualMap | str:
    """The residual map the unit matchers compare A's and B's units through, or why there is
    none: a rotation the sketches cannot pin down, or different widths and no shared tokens."""
    wa, wb = sa.width(), sb.width()
    assert wa is not None and wb is not None
    al = align_views(a, b)
    stuck = undetermined_rotation(al)
    if stuck:
        return stuck
    rmap = ResidualMap.from_alignment(al, wa, wb)
    if rmap is None:
        return "no shared tokens to align residual streams of different widths"
    return rmap


def common_kinds(sa: UnitSide, slot_a: Slot, sb: UnitSide, slot_b: Slot) -> list[str]:
    both = sa.kinds(*slot_a) & sb.kinds(*slot_b)
    kinds: list[str] = [k for k in ("up", "gate") if k in both]
    if len(kinds) < 2 and "down" in both:
        kinds.append("down")
    return kinds


def _finish(side: str, q: np.ndarray, q_pos: np.ndarray, views_q: list[np.ndarray],
            views_t: list[np.ndarray], nq: int, nt: int, t_index: np.ndarray) -> UnitMatch:
    per_view_c = [cosine([vq], [vt]) for vq, vt in zip(views_q, views_t, strict=True)]
    c = per_view_c[0] if len(per_view_c) == 1 else sum(per_view_c[1:], per_view_c[0]) / len(
        per_view_c)
    matched, mcos = assign(c)
    runner = np.full(c.shape[0], np.nan)
    if c.shape[1] > 1:
        rows = np.arange(c.shape[0])
        best = np.argmax(c, axis=1)
        top = c[rows, best].copy()
        c[rows, best] = -np.inf
        runner = c.max(axis=1)
        c[rows, best] = top
    per_view = ([t_index[np.argmax(cv, axis=1)] for cv in per_view_c]
                if len(per_view_c) > 1 else [])
    matched_idx = t_index[matched]
    rho, logp = spearman_logp(q_pos, matched_idx)
    crho, clogp = spearman_logp(per_view[0], per_view[1]) if per_view else (0.0, 0.0)
    return UnitMatch(side, q, matched_idx, mcos, runner, nq, nt, rho, logp, per_view,
                     crho, clogp)


def match_full(sa: UnitSide, slot_a: tuple[int, int | None], sb: UnitSide,
               slot_b: tuple[int, int | None], rmap: ResidualMap, kinds: list[str],
               max_units: int) -> UnitMatch | None:
    """Match a subsample of the narrower side's units against all units of the other side."""
    na, nb = sa.units(*slot_a), sb.units(*slot_b)
    if na is None or nb is None:
        return None
    a_query = na <= nb
    nq = min(na, nb)
    q = subsample_units(nq, max_units, *(slot_a if a_query else slot_b))
    views_a = sa.full_views(kinds, slot_a[0], slot_a[1], q if a_query else None,
                            rmap.side_a())
    views_b = sb.full_views(kinds, slot_b[0], slot_b[1], None if a_query else q,
                            rmap.side_b())
    vq, vt = (views_a, views_b) if a_query else (views_b, views_a)
    nt = max(na, nb)
    return _finish("a" if a_query else "b", q, q, vq, vt, na if a_query else nb,
                   nt, np.arange(nt))


def match_sketch(sa: UnitSide, slot_a: tuple[int, int | None], sb: UnitSide,
                 slot_b: tuple[int, int | None], rmap: ResidualMap,
                 kinds: list[str], min_dims: int = 8) -> UnitMatch | None:
    """Match the sampled units of two same-shape sketches (same positions in both models)."""
    ea, eb, used = [], [], []
    for kind in kinds:
        if kind == "down":
            continue            # down's sampled units sit at other positions
        xa, xb = sa.sketch(kind, *slot_a), sb.sketch(kind, *slot_b)
        if xa is None or xb is None or list(xa["shape"]) != list(xb["shape"]):
            continue
        ea.append(xa)
        eb.append(xb)
        used.append(kind)
    if not ea:
        return None
    cols = np.asarray(ea[0]["cols"])
    ia, ib, sg = rmap.within(cols)
    if len(ia) < min_dims:
        return None
    views_a = [v[:, ia] * sg for k in used
               if (v := sa.sketch_values(k, *slot_a)) is not None]
    views_b = [v[:, ib] for k in used if (v := sb.sketch_values(k, *slot_b)) is not None]
    rows = np.asarray(ea[0]["rows"])
    n = int(ea[0]["shape"][0])
    return _finish("a", rows, np.arange(len(rows)), views_a, views_b, n, n, rows)
