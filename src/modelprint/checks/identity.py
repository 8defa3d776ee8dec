"""identity: byte-identical tensors, and near-identical ones after dequantisation.

Two independently trained models never share a non-constant tensor bit for bit; a copied one
does. The fingerprint keeps a digest of every stored tensor's bytes (BLAKE3; sha256 in
fingerprints before format /3), so exact copies are found by hash; digests of different
algorithms never match, and the check says so when the two fingerprints hold different ones.
A quantised or lightly perturbed copy changes every byte, so the aligned weight sketches are
also compared: a matrix whose relative difference ``||A - B|| / ||B||`` is below
``near_threshold`` (default 0.1; Q4 quantisation gives ~0.05-0.1, Q8_0 ~0.005, independent
models ~1.4) is a near-identical copy.

Constant tensors (std 0, e.g. norm gains still at their initial ones) and tiny tensors
(fewer than ``min_elements``) are ignored: identical initial values are not lineage.
Cannot show: anything about models that were trained further after copying (use
weights_cosine) or whose tensors were permuted.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelprint._median import median
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.sketchpairs import sketch_pairs
from modelprint.fingerprint.model import Fingerprint, TensorStat


def _hashes(fp: Fingerprint, min_elements: int) -> dict[str, list[TensorStat]]:
    out: dict[str, list[TensorStat]] = {}
    for t in fp.tensors:
        if t.count < min_elements or not (t.std and t.std > 0.0) or not t.digest:
            continue
        out.setdefault(t.digest, []).append(t)
    return out


def _algorithms(hashes: dict[str, list[TensorStat]]) -> set[str]:
    return {h.split(":", 1)[0] for h in hashes}


def _label(t: TensorStat) -> str:
    where = "" if t.layer is None else f" layer {t.layer}"
    return f"{t.role}{where}" + ("" if t.expert is None else f" expert {t.expert}")


class Identity:
    name: ClassVar[str] = "identity"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {
        "min_elements": 1024,
        "near_threshold": 0.1,
        "min_near_fraction": 0.5,
    }
    description: ClassVar[str] = (
        "Tensors whose stored bytes are identical (same BLAKE3 digest), and matrices that are "
        "near-identical after dequantisation (small relative difference on aligned samples): "
        "an exact or quantised copy. Constant and tiny tensors are ignored. Says nothing about "
        "models trained further after copying; weights_cosine covers those."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        min_el = int(options.get("min_elements", 1024))
        near_thr = float(options.get("near_threshold", 0.1))
        min_frac = float(options.get("min_near_fraction", 0.5))
        ha, hb = _hashes(a.fingerprint, min_el), _hashes(b.fingerprint, min_el)
        shared = sorted(set(ha) & set(hb))
        exact: list[dict[str, Any]] = [
            {"digest": h, "candidate": sorted({_label(t) for t in ha[h]}),
             "reference": sorted({_label(t) for t in hb[h]}), "elements": ha[h][0].count}
            for h in shared]
        rel: list[dict[str, Any]] = []
        for pair in sketch_pairs(a.fingerprint, b.fingerprint, options.get("layer_map")):
            nb = float(np.linalg.norm(pair.b))
            if nb == 0.0 or float(np.std(pair.b)) == 0.0:
                continue
            rel.append({"role": pair.role, "layer": pair.layer_a, "expert": pair.expert,
                        "relative_difference": float(np.linalg.norm(pair.a - pair.b) / nb)})
        alg_a, alg_b = _algorithms(ha), _algorithms(hb)
        unhashable = bool(alg_a and alg_b and not alg_a & alg_b)
        comparable = len(ha) + len(rel)
        if comparable == 0:
            return Evidence.not_applicable(self.name, self.strength,
                                           "no non-constant tensors to compare", near_thr)
        near = [r for r in rel if r["relative_difference"] <= near_thr]
        near_frac = len(near) / len(rel) if rel else 0.0
        median_rel = median([r["relative_difference"] for r in rel]) if rel else None
        is_exact = bool(exact)
        is_near = bool(rel) and near_frac >= min_frac
        if is_exact:
            summary = (f"{len(exact)} non-constant tensor(s) are byte-identical, e.g. "
                       f"{exact[0]['candidate'][0]}: an exact copy")
        elif is_near:
            summary = (f"{len(near)} of {len(rel)} matrices are near-identical (median relative "
                       f"difference {median_rel:.3f}): a quantised or lightly perturbed copy")
        else:
            summary = ("no identical or near-identical tensors"
                       + (f" (median relative difference {median_rel:.2f})" if rel else ""))
        if unhashable:
            summary += (f"; byte identity not checked: the candidate's tensor digests are "
                        f"{'/'.join(sorted(alg_a))}, the reference's {'/'.join(sorted(alg_b))} "
                        "(re-create the older fingerprint)")
        return Evidence(
            check=self.name, strength=self.strength, applicable=True,
            score=float(len(exact)) if is_exact else near_frac,
            threshold=near_thr, p_value=None, indicates_derivation=is_exact or is_near,
            summary=summary,
            details={
                "kind": "exact" if is_exact else "near" if is_near else "none",
                "exact_matches": exact[:50],
                "exact_match_count": len(exact),
                "hashed_tensors": {"candidate": sum(len(v) for v in ha.values()),
                                   "reference": sum(len(v) for v in hb.values())},
                "digest_algorithms": {"candidate": sorted(alg_a), "reference": sorted(alg_b)},
                "byte_identity_checked": not unhashable,
                "near_fraction": near_frac,
                "median_relative_difference": median_rel,
                "per_matrix": rel,
                "p_value_note": "no p-value: a byte-identical non-constant tensor is not a "
                                "chance event under independent training",
            },
        )


CHECK = Identity()
