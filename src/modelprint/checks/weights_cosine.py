"""weights_cosine: element-wise cosine of same-shape weight matrices (HuRef's PCS), tested.

After pre-training converges, fine-tuning, RLHF and even long continued pre-training move the
parameter vector's *direction* little (HuRef, arXiv 2312.04828): a derivative's matrices have
cosine near 1 with the parent's, independent models near 0 (±0.01 at 7B scale). The check
uses the aligned sub-matrix sketches of both fingerprints (the same positions in both models;
see ``fingerprint/sketches.py``) so it runs on ``*.fp.json`` references too.

Each slot gets a row-permutation test on its residual axis (``checks/permutation.py``): how far
the aligned dot product sits above what a random ordering of residual dimensions gives. Slot
p-values are combined with Bonferroni (valid under any dependence). That p-value is what
decides; the cosine itself is the readable score.

When the embedding alignment finds the residual streams rotated against each other
(``checks/alignment.py``), a negative result says nothing (element-wise comparison is blind to
a change of basis): the check then reports "no information" instead of "no".

Cannot show: derivation hidden by a permutation or rotation of the residual stream, by
re-initialisation of the compared tensors, or between tensors of different shapes (vocabulary
or width changes skip those tensors; depth changes need a layer alignment). Distillation
leaves no element-wise trace at all.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelprint._median import median
from modelprint.checks.alignment import blind_to_rotation
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.permutation import (
    bonferroni_min,
    cantelli_bound,
    residual_major,
    row_permutation_test,
)
from modelprint.checks.sketchpairs import has_sketches, sketch_pairs


def _cos(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return None
    return float(np.vdot(a, b) / (na * nb))


class WeightsCosine:
    name: ClassVar[str] = "weights_cosine"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {"alpha": 1e-6, "layer_map": None}
    description: ClassVar[str] = (
        "Element-wise cosine of same-shape weight matrices (HuRef's parameter cosine) on "
        "aligned samples, with a permutation test over residual dimensions. Decisive for "
        "fine-tunes, continued pre-training, quantised and merged copies. Blind to models whose "
        "residual stream was permuted or rotated, to tensors whose shapes changed and to "
        "distillation; independent models score about 0."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        if not has_sketches(a.fingerprint) or not has_sketches(b.fingerprint):
            return Evidence.not_applicable(self.name, self.strength,
                                           "a fingerprint holds no weight sketches", alpha)
        layer_map = options.get("layer_map")
        per_slot: list[dict[str, Any]] = []
        p_values: list[float] = []
        cosines: list[float] = []
        for pair in sketch_pairs(a.fingerprint, b.fingerprint, layer_map):
            ra, rb = residual_major(pair.role, pair.a), residual_major(pair.role, pair.b)
            cos = _cos(pair.a, pair.b)
            if ra is None or rb is None or cos is None:
                continue
            test = row_permutation_test(ra, rb)
            if test is None:
                continue
            cosines.append(cos)
            p_values.append(test.p_value)
            per_slot.append({"role": pair.role, "layer_a": pair.layer_a, "layer_b": pair.layer_b,
                             "expert": pair.expert, "cosine": cos, "z": test.z,
                             "p_value": test.p_value})
        if not per_slot:
            return Evidence.not_applicable(
                self.name, self.strength,
                "no weight matrix has the same shape in both models"
                + ("" if layer_map else " at the same layer index"), alpha)
        p = bonferroni_min(p_values)
        zs = np.array([s["z"] for s in per_slot])
        score = float(np.mean(cosines))
        best = max(per_slot, key=lambda s: s["z"])
        indicates: bool | None = p <= alpha
        blind = None if indicates else blind_to_rotation(a.fingerprint, b.fingerprint)
        if blind:
            indicates = None
        by_role: dict[str, list[float]] = {}
        for s in per_slot:
            by_role.setdefault(s["role"], []).append(s["cosine"])
        summary = (
            f"mean cosine {score:.3f} over {len(per_slot)} same-shape matrices; strongest "
            f"{best['role']} layer {best['layer_a']}: z = {best['z']:.1f}; "
            + ("aligned far beyond chance" if indicates else "no alignment beyond chance")
            + (f"; no information: {blind}" if blind else "")
        )
        return Evidence(
            check=self.name, strength=self.strength, applicable=True, score=score,
            threshold=alpha, p_value=p, indicates_derivation=indicates, summary=summary,
            reason=blind,
            details={
                "statistic": "mean element-wise cosine of sampled sub-matrices",
                "p_value_method": "row-permutation test over residual dimensions (Hoeffding "
                                  "combinatorial CLT, normal tail), Bonferroni over matrices",
                "matrices": len(per_slot),
                "max_z": float(zs.max()), "median_z": median(zs),
                "cantelli_bound_best": cantelli_bound(float(zs.max())),
                "by_role": {r: float(np.mean(v)) for r, v in by_role.items()},
                "per_matrix": per_slot,
                "null": {"description": "cosine of independent models ~ 0; per-matrix z ~ N(0,1)"},
            },
        )


CHECK = WeightsCosine()
