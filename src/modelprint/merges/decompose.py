"""``decompose(candidate, parents, base)``: which parents a merge owes what, layer by layer.

The fits (``fit.py``) on the slot statistics (``collect.py``), with bootstrap intervals
(``bootstrap.py``); the method (``method.py``) decides which estimate of the weights is the
right one to report:

* linear / task arithmetic: the pooled constrained least-squares weights -- without a base,
  ``y ~ sum w_i P_i`` with ``w >= 0, sum w = 1``; with a base, ``y - B ~ sum l_i (P_i - B)``
  with ``l >= 0`` and the base's weight ``1 - sum l_i``;
* SLERP: per tensor the slerp ``t`` that fits best, weights ``(1 - t, t)``;
* TIES / DARE: the weights fitted on the entries where several task vectors survived
  (``sparse.py``), normalised for TIES, times the estimated density for DARE.

A parent is *not a parent* when its weight's 95 % bootstrap interval reaches 0 or its weight
is below :data:`MIN_WEIGHT`; what such a model explains on its own (its squared cosine with
the candidate, or with the candidate's change from the base) is reported beside it -- about 0
for an unrelated model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelprint.checks.base import ModelView
from modelprint.errors import InputError
from modelprint.merges import method as m
from modelprint.merges.bootstrap import N_BOOT, Estimate, estimate
from modelprint.merges.collect import SlotStats, collect, delta_transform
from modelprint.merges.fit import alone, explained, rss, solve, transform
from modelprint.merges.sample import source

#: Weights below this share of the candidate are reported as "not a parent": no merge recipe
#: uses them, and they are at the level of the fit's own noise on the benchmark merges.
MIN_WEIGHT = 0.01

#: Above this share of the candidate's squared distance from its nearest parent left
#: unexplained, the report says the parents do not account for the candidate exactly.
RESIDUAL_NOTE = 0.05


@dataclass
class ParentWeight:
    name: str
    weight: Estimate
    alone: float
    is_parent: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "weight": self.weight.to_json(),
                "explains_alone": self.alone, "is_parent": self.is_parent, "note": self.note}


@dataclass
class Decomposition:
    """What ``modelprint decompose`` reports (``to_json`` is the ``--json`` document)."""

    candidate: str
    parents: list[ParentWeight]
    base: str | None
    base_weight: Estimate | None
    source: str
    method: str
    method_note: str
    explained: Estimate
    #: layer -> [Estimate per parent]; None for the model-level slots (embeddings)
    per_layer: dict[int, list[Estimate]]
    per_role: dict[str, list[Estimate]]
    density: Estimate | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    slots: int = 0
    seconds: float = 0.0
    mergekit_yaml: str = ""
    summary: str = ""

    @property
    def gradient(self) -> bool:
        """Do the per-layer weights of some parent differ by more than their uncertainty?"""
        for i in range(len(self.parents)):
            vals = [ests[i] for ests in self.per_layer.values()]
            if len(vals) < 2:
                continue
            sd = float(np.nanmedian([e.sd for e in vals]))
            span = max(e.value for e in vals) - min(e.value for e in vals)
            if span > max(0.05, 4 * sd):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "modelprint.decomposition/1",
            "candidate": self.candidate,
            "parents": [p.to_json() for p in self.parents],
            "base": self.base,
            "base_weight": None if self.base_weight is None else self.base_weight.to_json(),
            "source": self.source, "method": self.method, "method_note": self.method_note,
            "explained": self.explained.to_json(),
            "density": None if self.density is None else self.density.to_json(),
            "per_layer": [{"layer": layer, "weights": [e.to_json() for e in ests]}
                          for layer, ests in sorted(self.per_layer.items())],
            "per_role": {role: [e.to_json() for e in ests]
                         for role, ests in self.per_role.items()},
            "gradient": self.gradient,
            "evidence": self.evidence, "slots": self.slots, "seconds": self.seconds,
            "mergekit_yaml": self.mergekit_yaml, "summary": self.summary,
        }


def _group(slots: list[SlotStats], grams: list[np.ndarray], key: Any) -> dict[Any, np.ndarray]:
    out: dict[Any, np.ndarray] = {}
    for s, g in zip(slots, grams, strict=True):
        k = key(s)
        if k is None:
            continue
        out[k] = out[k] + g if k in out else g.copy()
    return out


def decompose(candidate: ModelView, parents: Sequence[ModelView],
              base: ModelView | None = None, *, names: Sequence[str] | None = None,
              base_name: str | None = None, candidate_name: str | None = None,
              use_weights: bool | None = None, n_boot: int = N_BOOT, seed: int = 0,
              rows: int | None = None, cols: int | None = None) -> Decomposition:
    """Decompose ``candidate`` as a merge of ``parents`` (and ``base`` for task-vector
    methods). Raises InputError when no tensor slot is shared by all models."""
    start = time.perf_counter()
    if not parents:
        raise InputError("decompose", "at least one parent is needed")
    n = len(parents)
    pnames = list(names) if names is not None else [p.name for p in parents]
    models = [*parents, *([base] if base is not None else [])]
    src = source(candidate, models, use_weights)
    slots = collect(candidate, parents, base, use_weights=src == "weights", n_boot=n_boot,
                    seed=seed, rows=rows, cols=cols)
    if not slots:
        raise InputError(candidate_name or candidate.name,
                         "shares no same-shape weight matrix with every parent"
                         + (" and the base" if base is not None else "")
                         + " (or the parents do not differ anywhere)")
    has_base = base is not None
    if has_base:
        t = delta_transform(n)
        fitg = [transform(s.raw, t) / s.spread for s in slots]
    else:
        fitg = [s.raw / s.spread for s in slots]
    total = np.sum(fitg, axis=0)
    w_all = solve(total, nonneg=True, sum_to_one=not has_base)  # (B+1, n)
    ev: dict[str, Any] = {"linear_fit": [estimate(w_all[:, i]).to_json() for i in range(n)]}
    expl = estimate(explained(total, w_all))
    unexplained = _unexplained(total[0], w_all[0], has_base)
    ev["unexplained_vs_nearest_parent"] = unexplained
    alone_frac = alone(total[0])
    by_layer = _group(slots, fitg, lambda s: s.layer)
    by_role = _group(slots, fitg, lambda s: s.role)
    layer_w = {k: solve(g, nonneg=True, sum_to_one=not has_base) for k, g in by_layer.items()}
    role_w = {k: solve(g, nonneg=True, sum_to_one=not has_base) for k, g in by_role.items()}

    method, note, density = m.LINEAR, "", None
    weights = w_all
    base_weight: Estimate | None = None
    sparse = m.sparse_finding(slots, n) if has_base else None
    if sparse is not None:
        ev["sparsity"] = sparse.evidence
    if sparse is not None and sparse.sparsified and sparse.weights is not None:
        method, density, weights = str(sparse.method), sparse.density, sparse.weights
        layer_w = _sparse_groups(slots, lambda s: s.layer, method, sparse) or layer_w
        role_w = _sparse_groups(slots, lambda s: s.role, method, sparse) or role_w
        note = (f"{sparse.none_fraction:.1%} of entries equal the base exactly "
                f"(a linear merge would leave {sparse.null_fraction:.2%})")
    else:
        pair = _active_pair(w_all, has_base, n)
        if pair is not None:
            sl = m.slerp_finding(slots, pair)
            ev["slerp"] = sl.evidence
            if sl.decided == m.SLERP:
                method = m.SLERP
                weights, layer_w, role_w = _slerp_weights(slots, sl, n, has_base)
                note = (f"slerp fits every tensor better than a straight line in "
                        f"{sl.fraction_slerp_better:.0%} of bootstrap replicates "
                        f"(median angle between the parents {sl.median_angle_deg:.1f} deg)")
            elif sl.decided is None and unexplained < RESIDUAL_NOTE:
                note = (f"linear or SLERP: the parents are too nearly parallel to tell "
                        f"(median angle {sl.median_angle_deg:.2f} deg); the weights agree")
        if method == m.LINEAR and has_base:
            excl, s_est = m.sum_excludes_one(w_all)
            ev["task_vector_weight_sum"] = s_est.to_json()
            if excl:
                method = m.TASK_ARITHMETIC
                note = f"task-vector weights sum to {s_est} (not 1): the base enters too"
    if unexplained >= RESIDUAL_NOTE and method in (m.LINEAR, m.TASK_ARITHMETIC):
        extra = (f"the fit leaves {unexplained:.0%} of the candidate's distance from its "
                 "nearest parent unexplained: trained further after merging, a parent missing"
                 + ("" if has_base else ", or task vectors merged onto a base not offered "
                    "(--base)"))
        note = f"{note}; {extra}" if note else extra
    if has_base and method in (m.LINEAR, m.TASK_ARITHMETIC):
        base_weight = estimate(1.0 - weights.sum(axis=1))
    parents_out = [_parent(pnames[i], weights[:, i], float(alone_frac[i])) for i in range(n)]
    per_layer = {int(k): [estimate(v[:, i]) for i in range(n)]
                 for k, v in layer_w.items() if k is not None}
    per_role = {str(k): [estimate(v[:, i]) for i in range(n)] for k, v in role_w.items()}
    out = Decomposition(
        candidate=candidate_name or candidate.name, parents=parents_out,
        base=(base_name or base.name) if base is not None else None, base_weight=base_weight,
        source=src, method=method, method_note=note, explained=expl, per_layer=per_layer,
        per_role=per_role, density=density, evidence=ev, slots=len(slots))
    from modelprint.merges.describe import summary
    from modelprint.merges.mergekit import mergekit_yaml

    out.mergekit_yaml = mergekit_yaml(out, num_layers=candidate.fingerprint.num_layers)
    out.summary = summary(out)
    out.seconds = time.perf_counter() - start
    return out


def _unexplained(gram: np.ndarray, w: np.ndarray, has_base: bool) -> float:
    """RSS of the fit over the RSS of the nearest single parent (weight 1; with a base, the
    base itself too): 0 for an exact merge, 1 when mixing explains nothing more."""
    k = gram.shape[-1] - 1
    cands = [np.eye(k)[i] for i in range(k)] + ([np.zeros(k)] if has_base else [])
    nearest = min(float(rss(gram, c)) for c in cands)
    return max(float(rss(gram, w)), 0.0) / nearest if nearest > 0 else 0.0


def _parent(name: str, reps: np.ndarray, alone_frac: float) -> ParentWeight:
    est = estimate(reps)
    is_parent = est.lo > 0 and est.value >= MIN_WEIGHT
    note = "" if is_parent else (
        f"not a parent: weight {est.value:.3f} (95 % interval {est.lo:.3f}-{est.hi:.3f}); "
        f"alone it explains {alone_frac:.1%} of the candidate")
    return ParentWeight(name, est, alone_frac, is_parent, note)


def _active_pair(w: np.ndarray, has_base: bool, n: int) -> tuple[int, int] | None:
    """The two raw regressors carrying the weight, when exactly two do (v0 first: the base,
    or the heavier parent -- mergekit's ``base_model``)."""
    lo = np.percentile(w[1:], 2.5, axis=0) if w.shape[0] > 2 else w[0]
    active = [i for i in range(n) if lo[i] > 0 and w[0, i] >= MIN_WEIGHT]
    if has_base:
        bw = 1.0 - w.sum(axis=1)
        blo, bhi = (np.percentile(bw[1:], [2.5, 97.5]) if w.shape[0] > 2 else (bw[0], bw[0]))
        if blo > 0 or bhi < 0:
            active = [n, *active]
        if len(active) == 2:
            return (active[0], active[1])
        return None
    if len(active) != 2:
        return None
    a, b = sorted(active, key=lambda i: -w[0, i])
    return (a, b)


def _slerp_weights(slots: list[SlotStats], sl: m.SlerpFinding, n: int, has_base: bool
                   ) -> tuple[np.ndarray, dict[Any, np.ndarray], dict[Any, np.ndarray]]:
    """Mixture weights (B+1, n) from the per-tensor slerp t: v0 gets 1 - t, v1 gets t (the
    base's share, when v0 is the base, is left out of the parents' weights)."""
    i, j = sl.pair

    def weights_of(t: np.ndarray) -> np.ndarray:
        w = np.zeros((t.shape[0], n))
        if i < n:
            w[:, i] = 1.0 - t
        w[:, j] = t
        return w

    def grouped(key: Any) -> dict[Any, np.ndarray]:
        groups: dict[Any, list[int]] = {}
        for k, s in enumerate(slots):
            groups.setdefault(key(s), []).append(k)
        return {g: weights_of(sl.t[:, idx].mean(axis=1)) for g, idx in groups.items()
                if g is not None}

    return weights_of(sl.t.mean(axis=1)), grouped(lambda s: s.layer), grouped(lambda s: s.role)


def _sparse_groups(slots: list[SlotStats], key: Any, method: str, sparse: m.SparseFinding
                   ) -> dict[Any, np.ndarray]:
    """Per-group sparse weights: the same per-entry coefficients, over that group's slots."""
    groups: dict[Any, list[Any]] = {}
    for s in slots:
        k = key(s)
        if k is not None and s.sparse is not None and np.any(np.isfinite(s.sparse.alpha)):
            groups.setdefault(k, []).append(s.sparse)
    if sparse.weights is None:
        return {}
    dens = sparse.weights.shape[0]
    d_reps = np.full(dens, sparse.density.value if sparse.density is not None else 1.0)
    normalised = bool(sparse.evidence.get("normalised"))
    n = sparse.weights.shape[1]
    return {k: m.mode_weights(found, n, method, normalised, d_reps)
            for k, found in groups.items()}
