"""mlp_matching: do the MLP hidden units of the two models line up? (Zhu et al. phi_U)

Per layer, the hidden units of both MLPs (rows of the up and gate projections, or columns of
the down projection when there is no gate) are compared by cosine after putting the residual
axis of both models in one basis (``checks/alignment.py``: shared-token embedding alignment,
the identity when no shared tokens exist and widths agree), matched one-to-one with linear
assignment, and the matched permutation is tested against the identity with a one-sided
Spearman test. Layers are combined with Fisher's method (layers that share a layer of the
other model, after a many-to-one depth alignment, are first combined with Bonferroni).

Why the p-value is valid (Zhu et al., arXiv 2502.12292): under independent random
initialisation and permutation-equivariant training, the hidden units of a layer are
exchangeable, so the matched permutation is uniformly random whatever the data were; per-layer
permutations are independent, so Fisher applies. A fine-tuned or quantised copy keeps its
units in place (rho near 1); a width-pruned one keeps its units in their original order, so
its units match an increasing subset of the parent's (rectangular assignment). Wide models are
subsampled (``max_units`` units of the narrower side against all units of the other side;
``max_dims`` paired residual dimensions for the cosines): the test stays exact on the subsample.

A second arm catches copies whose hidden units were permuted, which leave the order test
uniform (Zhu et al. note phi_U is a false negative there): the up and gate views (or up and
down) are matched separately and the Spearman correlation of the two matchings is tested, as
in their phi_MATCH. A permuted copy yields the same permutation from both views; unrelated
models yield unrelated matchings. This arm is invariant to unit permutations, hence not exact
(its null is that the two views do not agree by themselves; phi_MATCH "behaves like a
p-value" empirically). The arms are combined with Bonferroni.

Two mixture-of-experts models are compared expert by expert (expert ``e`` against expert
``e``, Bonferroni over a layer's experts); a MoE against a dense model is ``moe_upcycling``'s job.

Two paths: full weights (both models loaded with weights) match units against every unit of
the other side. Without weights the fingerprints' sketches (64 units at the same positions in
both models) are matched instead: this needs equal MLP shapes and cannot recover units that
moved (a permuted or pruned MLP then shows nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from modelprint._median import median
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.canonical import disguises
from modelprint.checks.curves import resolve_alignment
from modelprint.checks.layer_alignment import align_layers
from modelprint.checks.unit_matching import (
    LN10,
    EarlyStop,
    ResidualMap,
    SideMap,
    bonferroni_logp,
    layer_similarity,
    to_p,
    two_arms,
)
from modelprint.checks.unit_reading import (
    DENSE,
    EXPERT,
    UnitMatch,
    UnitSide,
    common_kinds,
    match_full,
    match_sketch,
    residual_map,
)

LayerPairs = list[tuple[int, int]]


def pair_layers(num_a: int, num_b: int, layers_a: list[int], layers_b: list[int],
                layer_map: Any, similarity: Callable[[], np.ndarray]
                ) -> tuple[LayerPairs, str, np.ndarray | None]:
    """Layer pairs to test, how they were chosen, and the similarity matrix when one was
    needed (different depths without a ``layer_map``)."""
    in_a, in_b = set(layers_a), set(layers_b)
    if layer_map:
        pairs, how = resolve_alignment(num_a, num_b, layer_map)
        assert pairs is not None
        return [(i, j) for i, j in pairs if i in in_a and j in in_b], how, None
    if num_a == num_b:
        return ([(i, i) for i in layers_a if i in in_b],
                "identity (equal depth)", None)
    sim = similarity()
    res = align_layers(sim)
    pairs = [(layers_a[r], layers_b[c]) for r, c in res.mapping]
    how = "aligned by MLP-weight CKA: " + "; ".join(
        f"candidate layers {layers_a[c0]}-{layers_a[c1]} <- reference layers "
        f"{layers_b[r0]}-{layers_b[r1]}" for c0, c1, r0, r1 in res.runs)
    return pairs, how, sim


def similarity_fn(sa: UnitSide, sb: UnitSide, rmap: ResidualMap, full: bool,
                  max_experts: int = 8) -> Callable[[], np.ndarray]:
    """Lazy layer-by-layer CKA of the up projections (unit-order invariant)."""
    def compute() -> np.ndarray:
        empty = np.zeros((len(sa.layers()), len(sb.layers())))
        side_a: SideMap | tuple[np.ndarray, np.ndarray | None]
        side_b: SideMap | tuple[np.ndarray, np.ndarray | None]
        if full:
            side_a, side_b = rmap.side_a(), rmap.side_b()
        else:
            cols = next((np.asarray(v["cols"]) for (r, _, _), v in sa.sketches.items()
                         if r == sa.roles["up"]), None)
            if cols is None:
                return empty
            ia, ib, sg = rmap.within(cols)
            if len(ia) < 4:     # e.g. a rotated stream: sketches have too few dims
                return empty
            side_a, side_b = (ia, sg), (ib, None)
        xa = {i: x for i in sa.layers()
              if (x := sa.summary(i, side_a, full, max_experts)) is not None}
        xb = {j: x for j in sb.layers()
              if (x := sb.summary(j, side_b, full, max_experts)) is not None}
        return layer_similarity(xa, xb, sa.layers(), sb.layers()) if xa and xb else empty
    return compute


def match_record(m: UnitMatch, layer_a: int, layer_b: int) -> dict[str, Any]:
    return {
        "layer_a": layer_a, "layer_b": layer_b, "rho": m.rho,
        "p_value": to_p(m.logp), "log10_p": m.logp / LN10,
        "units_a": m.n_query_side if m.query_side == "a" else m.n_target_side,
        "units_b": m.n_target_side if m.query_side == "a" else m.n_query_side,
        "tested_units": len(m.query), "query_side": m.query_side,
        "identity_fraction": m.identity_fraction,
        "matched_cosine": float(np.mean(m.matched_cos)),
        "runner_up_cosine": float(np.nanmean(m.runner_up_cos)),
        "consistency_rho": m.consistency_rho, "consistency_log10_p": m.consistency_logp / LN10,
    }


def _summary(records: list[dict[str, Any]], indicates: bool, by_order: bool) -> str:
    rhos = [r["rho"] for r in records]
    n = len(records)
    if not indicates:
        return (f"{n} layers: matched MLP units are in unrelated order (median Spearman rho "
                f"{median(rhos):.3f}) and views of the units do not agree on a match")
    if by_order:
        best = min(records, key=lambda r: r["log10_p"])
        return (f"{n} layers: matched MLP units keep their order (median Spearman rho "
                f"{median(rhos):.3f}; layer {best['layer_a']}: "
                f"{best['identity_fraction']:.0%} of units matched to the same index)")
    cos = np.mean([r["matched_cosine"] for r in records])
    run = np.mean([r["runner_up_cosine"] for r in records])
    return (f"{n} layers: MLP units have near-identical partners in another order (matched "
            f"cosine {cos:.2f} vs runner-up {run:.2f}; up and gate agree on the matching): "
            "a permuted copy")


class MlpMatching:
    name: ClassVar[str] = "mlp_matching"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {"alpha": 1e-6, "max_units": 256,
                                                 "max_dims": 256, "max_experts": 16,
                                                 "early_stop": True, "layer_map": None}
    description: ClassVar[str] = (
        "Matches the MLP hidden units of both models layer by layer (cosine of up/gate rows "
        "after residual alignment, linear assignment) and tests whether the matching keeps the "
        "units' order (Spearman, Fisher over layers; Zhu et al. 2025). The p-value is exact "
        "under independent initialisation whatever the training data. Decisive for "
        "fine-tunes, continued pre-training, quantised copies and width-pruned models. A second "
        "arm (do up and gate agree on the matching?) finds copies with permuted units when full "
        "weights are at hand."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        max_units = int(options.get("max_units", 256))
        max_dims = int(options.get("max_dims", 256))
        max_experts = int(options.get("max_experts", 16))
        sa, sb = UnitSide(a, DENSE), UnitSide(b, DENSE)
        ea, eb = UnitSide(a, EXPERT), UnitSide(b, EXPERT)
        experts = False
        if (not sa.layers() or not sb.layers()) and ea.layers() and eb.layers():
            sa, sb, experts = ea, eb, True      # two MoE models: expert e against expert e
        elif not sa.layers() or not sb.layers():
            which = "candidate" if not sa.layers() else "reference"
            hint = (" (its experts are compared by moe_upcycling)"
                    if (ea if not sa.layers() else eb).layers() else "")
            return Evidence.not_applicable(self.name, self.strength,
                                           f"the {which} has no dense MLP layers{hint}", alpha)
        rmap = residual_map(a, b, sa, sb)
        if isinstance(rmap, str):
            return Evidence.not_applicable(self.name, self.strength, rmap, alpha)
        full = a.weights is not None and b.weights is not None
        path = ("full weights" if full else
                "fingerprint sketches (64 units at the same positions in both models; "
                "cannot recover hidden units that moved)")
        rsub = rmap.subsample(max_dims) if full else rmap
        pairs, how, sim = pair_layers(
            a.fingerprint.num_layers, b.fingerprint.num_layers, sa.layers(), sb.layers(),
            options.get("layer_map"), similarity_fn(sa, sb, rsub, full))
        records: list[dict[str, Any]] = []
        tested: LayerPairs = []
        logps: list[float] = []
        clogps: list[float] = []
        stop = EarlyStop(len(pairs), alpha, bool(options.get("early_stop", True)))
        for done, (i, j) in enumerate(pairs, 1):
            lo: list[float] = []
            lc: list[float] = []
            for e in ([x for x in sa.experts(i)[:max_experts] if x in sb.experts(j)]
                      if experts else [None]):
                kinds = common_kinds(sa, (i, e), sb, (j, e))
                if not kinds:
                    continue
                m = (match_full(sa, (i, e), sb, (j, e), rsub, kinds, max_units) if full
                     else match_sketch(sa, (i, e), sb, (j, e), rmap, kinds))
                if m is None:
                    continue
                rec = match_record(m, i, j)
                rec["expert"] = e
                rec["views"] = kinds if full else [k for k in kinds if k != "down"]
                records.append(rec)
                lo.append(m.logp)
                lc.append(m.consistency_logp)
            if lo:          # experts of one layer: Bonferroni (valid under any dependence)
                tested.append((i, j))
                logps.append(bonferroni_logp(lo))
                clogps.append(bonferroni_logp(lc))
                if stop.should_stop(done, bonferroni_logp(two_arms(tested, logps, clogps)[:2])):
                    break
        if not records:
            reason = ("the residual streams differ by a rotation, which sketches of 64 "
                      "residual dimensions cannot undo: needs full weights of both models "
                      f"({rmap.basis})" if not full and rmap.rotation is not None else
                      "no layer pair has MLP sketches of the same shape and a common residual "
                      "basis (width-pruned MLPs need full weights)" if not full else
                      "no layer pair with comparable MLP weights")
            return Evidence.not_applicable(self.name, self.strength, reason, alpha)
        order_logp, cons_logp, groups = two_arms(tested, logps, clogps)
        order_logp, cons_logp = stop.correct(order_logp), stop.correct(cons_logp)
        logp = bonferroni_logp([order_logp, cons_logp])
        p = to_p(logp)
        rhos = np.array([r["rho"] for r in records])
        indicates = bool(logp <= np.log(alpha))
        summary = _summary(records, indicates, order_logp <= cons_logp)
        undone = disguises(a.fingerprint, b.fingerprint, rmap)
        if indicates and undone:
            summary += f" ({'; '.join(undone)})"
        return Evidence(
            check=self.name, strength=self.strength, applicable=True,
            score=float(np.mean(rhos)), threshold=alpha, p_value=p,
            indicates_derivation=indicates, summary=summary,
            details={
                "statistic": "Spearman rho between unit order and its linear-assignment match",
                "p_value_method": "two arms, each a one-sided Spearman per layer (t tail, "
                                  "floored at 1/n!), Bonferroni within layers sharing a layer, "
                                  "Fisher across layers; the arms are combined with Bonferroni; "
                                  "after an early stop (layers_compared) each arm is multiplied "
                                  "by the number of layer pairs; p floored at the smallest "
                                  "float64, exact value in log10_p",
                "log10_p": logp / LN10, "independent_groups": groups,
                "order_test": {"p_value": to_p(order_logp), "log10_p": order_logp / LN10,
                               "validity": "exact under independent initialisation"},
                "consistency_test": {
                    "p_value": to_p(cons_logp), "log10_p": cons_logp / LN10,
                    "validity": "approximate (phi_MATCH-style: the best matches found by two "
                                "views of the units agree; invariant to permuted units)"},
                "path": path, "residual_basis": rmap.basis,
                "layers_compared": stop.to_json(len(tested)),
                "units": "experts, each against the same-index expert" if experts else
                         "dense MLP",
                "residual_dims": len(rsub.b_dims) if full else None,
                "residual_rotated": rmap.rotation is not None,
                "disguises_undone": undone,
                "layer_pairing": how,
                "similarity_matrix": None if sim is None else np.round(sim, 4).tolist(),
                "matched_fraction": float(np.mean([r["identity_fraction"] for r in records])),
                "per_layer": records,
                "null": {"description": "under independent initialisation each layer's rho is "
                                        "the Spearman rho of a uniformly random permutation "
                                        "(mean 0, sd 1/sqrt(n-1))"},
            },
        )


CHECK = MlpMatching()
