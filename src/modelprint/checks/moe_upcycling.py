"""moe_upcycling: are the candidate's experts copies or slices of the reference's dense FFN?

Sparse upcycling builds a mixture-of-experts model from a dense one: every expert starts as a
copy of the dense FFN (Mixtral-style) or as a 1/k slice of its hidden units (Qwen1.5-MoE's
fine-grained split, sometimes with the units shuffled), then training adds noise. Attention
stays dense and is compared by the other checks; this check looks at the experts.

Per layer and expert, the expert's hidden units (rows of its up and gate projections, residual
axis aligned as in ``mlp_matching``) are matched into the dense FFN's units by rectangular
linear assignment on cosine, and two things are tested:

* order: a copy or an in-order slice matches an increasing run of dense units, so the
  Spearman correlation between the expert's unit order and the matched dense indices is
  near 1. Under independent initialisation the dense units are exchangeable and the matched
  indices are a random injection: the one-sided Spearman p-value is exact.
* consistency: matched separately on the up and on the gate view, the units of a copied or
  sliced expert find the *same* dense partners, whatever order they were shuffled into; an
  unrelated expert's two matchings disagree (phi_MATCH-style; approximate null).

All experts of a layer are matched against the same dense layer, so their p-values are
dependent (an independently upcycled MoE has near-identical experts): they are combined with
Bonferroni; layers with Fisher (as in ``mlp_matching``); the two arms with Bonferroni.

Either side may be the MoE: with a dense candidate and an MoE reference the reference's
experts are matched into the candidate's dense FFN (a dense sibling of an upcycled model
shares the dense ancestor's units too); ``details.moe_side`` says which. Per-expert records
always give the MoE model's layer as ``layer_a``.

Cannot show: experts re-initialised from scratch; without full weights only experts whose
shape equals the dense FFN's (copies) can be compared, through the fingerprints' sketches.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelprint._median import median
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.mlp_matching import pair_layers, similarity_fn
from modelprint.checks.unit_matching import (
    LN10,
    EarlyStop,
    bonferroni_logp,
    describe_indices,
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


def _expert_record(m: UnitMatch, layer_a: int, layer_b: int, expert: int | None,
                   alpha: float) -> dict[str, Any]:
    expert_units = m.n_query_side if m.query_side == "a" else m.n_target_side
    dense_units = m.n_target_side if m.query_side == "a" else m.n_query_side
    best = min(m.logp, m.consistency_logp)
    rec: dict[str, Any] = {
        "layer_a": layer_a, "layer_b": layer_b, "expert": expert,
        "expert_units": expert_units, "dense_units": dense_units,
        "tested_units": len(m.query),
        "rho": m.rho, "log10_p": m.logp / LN10,
        "consistency_rho": m.consistency_rho, "consistency_log10_p": m.consistency_logp / LN10,
        "matched_cosine": float(np.mean(m.matched_cos)),
        "runner_up_cosine": float(np.nanmean(m.runner_up_cos)),
        "matched": bool(best <= np.log(alpha)),
    }
    if m.query_side == "a":
        rec["dense_slice"] = describe_indices(np.sort(m.matched), dense_units)
        rec["in_order"] = bool(np.all(np.diff(m.matched) > 0))
    return rec


def _summary(records: list[dict[str, Any]], indicates: bool, moe_side: str) -> str:
    dense_side = "reference" if moe_side == "candidate" else "candidate"
    layers = sorted({r["layer_a"] for r in records})
    hit = [r for r in records if r["matched"]]
    if not indicates:
        rho = median([r["rho"] for r in records])
        return (f"{len(records)} {moe_side} experts in {len(layers)} layers: none matches the "
                f"{dense_side}'s dense FFN beyond chance (median Spearman rho {rho:.3f})")
    first = [r for r in hit if r["layer_a"] == hit[0]["layer_a"]][:4]
    examples = ", ".join(
        f"expert {r['expert']} <- {r.get('dense_slice', 'dense units')}"
        + ("" if r.get("in_order", True) else " (shuffled)") for r in first)
    return (f"{len(hit)} of {len(records)} {moe_side} experts in {len(layers)} layers match "
            f"the {dense_side}'s dense FFN (layer {hit[0]['layer_a']}: {examples})")


class MoeUpcycling:
    name: ClassVar[str] = "moe_upcycling"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {"alpha": 1e-6, "max_units": 256,
                                                 "max_dims": 256, "max_experts": 16,
                                                 "early_stop": True, "layer_map": None}
    description: ClassVar[str] = (
        "For a mixture-of-experts model against a dense one (either side): matches each expert's "
        "hidden units to the dense FFN's (linear assignment on cosine after residual "
        "alignment) and tests whether they form an in-order copy or slice (exact Spearman "
        "p-value) or the same partners seen from both up and gate (shuffled slices). Finds "
        "sparse upcycling (Mixtral-style copies, Qwen1.5-MoE-style 1/k slices) after training."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        max_units = int(options.get("max_units", 256))
        max_dims = int(options.get("max_dims", 256))
        max_experts = int(options.get("max_experts", 16))
        moe_a, moe_b = bool(UnitSide(a, EXPERT).layers()), bool(UnitSide(b, EXPERT).layers())
        if moe_a and moe_b:
            return Evidence.not_applicable(self.name, self.strength,
                                           "both models have experts (mlp_matching compares "
                                           "them expert by expert)", alpha)
        if not moe_a and not moe_b:
            return Evidence.not_applicable(self.name, self.strength,
                                           "neither model has experts", alpha)
        # The test is about the relation, not the direction: a dense candidate against an
        # MoE reference (e.g. a dense sibling of an upcycled model, or a "down-cycled" one)
        # is tested with the reference's experts against the candidate's dense FFN.
        moe_side = "candidate" if moe_a else "reference"
        moe, dense = (a, b) if moe_a else (b, a)
        layer_map = options.get("layer_map")
        if layer_map and not moe_a:
            layer_map = [[int(j), int(i)] for i, j in layer_map]
        sa, sb = UnitSide(moe, EXPERT), UnitSide(dense, DENSE)
        if not sb.layers():
            return Evidence.not_applicable(
                self.name, self.strength, f"the {'reference' if moe_a else 'candidate'} "
                "(the model without experts) has no dense MLP", alpha)
        rmap = residual_map(moe, dense, sa, sb)
        if isinstance(rmap, str):
            return Evidence.not_applicable(self.name, self.strength, rmap, alpha)
        full = moe.weights is not None and dense.weights is not None
        rsub = rmap.subsample(max_dims) if full else rmap
        pairs, how, sim = pair_layers(
            moe.fingerprint.num_layers, dense.fingerprint.num_layers, sa.layers(), sb.layers(),
            layer_map, similarity_fn(sa, sb, rsub, full, max_experts))
        records: list[dict[str, Any]] = []
        tested: list[tuple[int, int]] = []
        order: list[float] = []
        cons: list[float] = []
        stop = EarlyStop(len(pairs), alpha, bool(options.get("early_stop", True)))
        for done, (i, j) in enumerate(pairs, 1):
            lo: list[float] = []
            lc: list[float] = []
            for e in sa.experts(i)[:max_experts]:
                kinds = common_kinds(sa, (i, e), sb, (j, None))
                if not kinds:
                    continue
                m = (match_full(sa, (i, e), sb, (j, None), rsub, kinds, max_units) if full
                     else match_sketch(sa, (i, e), sb, (j, None), rmap, kinds))
                if m is None:
                    continue
                records.append(_expert_record(m, i, j, e, alpha))
                lo.append(m.logp)
                lc.append(m.consistency_logp)
            if lo:
                tested.append((i, j))
                order.append(bonferroni_logp(lo))
                cons.append(bonferroni_logp(lc))
                if stop.should_stop(done, bonferroni_logp(two_arms(tested, order, cons)[:2])):
                    break
        if not records:
            reason = ("experts and dense FFN differ in shape: slices need full weights" if not full
                      else "no expert comparable with a dense FFN layer")
            return Evidence.not_applicable(self.name, self.strength, reason, alpha)
        order_logp, cons_logp, groups = two_arms(tested, order, cons)
        order_logp, cons_logp = stop.correct(order_logp), stop.correct(cons_logp)
        logp = bonferroni_logp([order_logp, cons_logp])
        indicates = bool(logp <= np.log(alpha))
        n_experts = {i: len(sa.experts(i)) for i, _ in tested}
        return Evidence(
            check=self.name, strength=self.strength, applicable=True,
            score=float(np.mean([r["matched"] for r in records])), threshold=alpha,
            p_value=to_p(logp), indicates_derivation=indicates,
            summary=_summary(records, indicates, moe_side),
            details={
                "statistic": "per expert: Spearman rho of unit order vs matched dense unit; "
                             "agreement of up- and gate-based matchings",
                "p_value_method": "one-sided Spearman (t tail, floored at 1/n!), Bonferroni "
                                  "over the experts of a layer, Fisher over layers, Bonferroni "
                                  "over the two arms; after an early stop (layers_compared) "
                                  "each arm is multiplied by the number of layer pairs; p "
                                  "floored at the smallest float64",
                "log10_p": logp / LN10, "independent_groups": groups,
                "order_test": {"p_value": to_p(order_logp), "log10_p": order_logp / LN10,
                               "validity": "exact under independent initialisation"},
                "consistency_test": {"p_value": to_p(cons_logp), "log10_p": cons_logp / LN10,
                                     "validity": "approximate (phi_MATCH-style)"},
                "moe_side": moe_side,
                "direction": ("candidate's experts vs the reference's dense FFN" if moe_a else
                              "reference's experts vs the candidate's dense FFN"),
                "path": "full weights" if full else
                        "fingerprint sketches (same-shape experts only)",
                "residual_basis": rmap.basis,
                "layers_compared": stop.to_json(len(tested)),
                "layer_pairing": how,
                "similarity_matrix": None if sim is None else np.round(sim, 4).tolist(),
                "experts_tested": len(records),
                "experts_skipped": int(sum(max(0, n - max_experts)
                                           for n in n_experts.values())),
                "matched_fraction": float(np.mean([r["matched"] for r in records])),
                "per_expert": records,
            },
        )


CHECK = MoeUpcycling()
