"""attention_cka: per-layer unbiased linear CKA of aligned Q and K weights (AWM).

The residual dimensions of both models are first put in one basis (``checks/alignment.py``;
identity when no shared tokens are available and the widths agree). Per layer, the Q (and K)
weights of both models, residual dimensions as samples, are compared with unbiased linear CKA
(``checks/cka.py``), which ignores head order, GQA width, scaling and any orthogonal mixing of
output channels. AWM (arXiv 2510.06738) measured independent 7B-14B pairs at 0.004 +- 0.003 and
every derivative it tried (SFT, continued pre-training, pruning, upcycling, multimodal) far
above.

Different depths: the full layer-by-layer CKA matrix is aligned with dynamic programming
(``checks/layer_alignment.py``), which explains layer drop and depth up-scaling; the mapping is
reported and offered to the other per-layer checks.

p-value: there is no exact null. The residual alignment is *chosen* to make the two models'
embeddings agree, and within each model the embedding and the Q/K weights share the residual
basis, so after alignment two independently trained models agree more than chance: on the
lineage zoo (benchmarks/lineage/RESULTS.md) independent same-recipe pairs score 0.03-0.20 and
different-shape pairs up to 0.28, while shuffling one model's residual dimensions gives
0.000 +- 0.002 -- a shuffle "null" calls every one of them derived (z > 20). A permutation of
the residual dimensions cannot calibrate the statistic either: CKA after alignment is invariant
to it. So the score is judged against a null panel of independent pairs
(``calibration/nulls.json``, check ``attention_cka``, statistic ``score``): the p-value is the
Student-t prediction p on the atanh scale (``calibration.nulls.predictive_p``), the empirical
panel p is reported beside it, and the check indicates derivation only when that p reaches
``alpha`` and the score reaches ``min_score`` (0.05, an order of magnitude above AWM's
independent pairs). Without a panel the check reports its numbers and gives no information
("not calibrated") -- it never decides on an uncalibrated score. Its layer alignment is still
computed and shown, and offered to the other per-layer checks (``details.alignment_trusted``)
when the check indicates derivation, or, without a usable panel, when the mean CKA over the
alignment reaches ``TRUSTED_ALIGNMENT`` (0.5: above every independent pair measured -- 0.28 on
the lineage zoo, 0.004 +- 0.003 for AWM's 7B-14B pairs). That only decides which layers the
weak curve checks compare; it never makes a verdict.

Cost: the HSICs are computed from the d x 32 projection sketches without forming any d x d
Gram (``checks/cka.py``), batched over layers and roles. That is linear in width and depth
(~0.1-0.2 s for a SmolLM2 pair; ``benchmarks/audit/RESULTS.md``), so no row subsampling or
float32 is used: the statistic is exactly the unbiased CKA over all residual dimensions.

Cannot show: derivatives that re-initialised attention; models without a common residual
basis (no shared tokens and different widths).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelprint.calibration.nulls import empirical_p, null_scores, predictive_p
from modelprint.checks.alignment import Alignment, align_views
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.canonical import fold_columns, reader_gain
from modelprint.checks.cka import Gram, PairedHSIC, hsic_matrix, hsic_paired
from modelprint.checks.layer_alignment import align_layers
from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode, slot_key

ROLES = ("attn.q", "attn.k")


def _projections(fp: Fingerprint) -> dict[tuple[str, int], np.ndarray]:
    """``W^T R`` per (role, layer) in canonical form: rows (residual dims) times the norm gain
    Q and K read through (``checks/canonical.py``)."""
    proj = (fp.sketches or {}).get("projection", {})
    out = {}
    for role in ROLES:
        for layer in range(fp.num_layers):
            entry = proj.get(slot_key(role, layer, None))
            if entry is not None:
                out[(role, layer)] = fold_columns(decode(entry).T,
                                                  reader_gain(fp, role, layer)).T
    return out


class _Grams:
    """Linear Grams (kept as features) and their self-HSIC, per (role, layer), for one side."""

    def __init__(self, mats: dict[tuple[str, int], np.ndarray]) -> None:
        self.k = {key: Gram(m) for key, m in mats.items()}
        keys = list(self.k)
        self.self_hsic = dict(zip(keys, hsic_paired([self.k[x] for x in keys],
                                                    [self.k[x] for x in keys]), strict=True))


def _comparable(ga: _Grams, gb: _Grams, key_a: tuple[str, int], key_b: tuple[str, int]
                ) -> bool:
    ka, kb = ga.k.get(key_a), gb.k.get(key_b)
    return (ka is not None and kb is not None and ka.n == kb.n
            and ga.self_hsic[key_a] * gb.self_hsic[key_b] > 0)


class _PairedCKA:
    """CKA of each comparable (key_a, key_b), batched."""

    def __init__(self, ga: _Grams, gb: _Grams,
                 keys: list[tuple[tuple[str, int], tuple[str, int]]]) -> None:
        self.hsic = PairedHSIC([ga.k[a] for a, _ in keys], [gb.k[b] for _, b in keys])
        self.den = np.sqrt(np.array([ga.self_hsic[a] * gb.self_hsic[b] for a, b in keys]))

    def __call__(self) -> np.ndarray:
        return np.asarray(self.hsic() / self.den, dtype=np.float64)


def _similarity(ga: _Grams, gb: _Grams, la: int, lb: int,
                pairs: list[tuple[int, int]] | None) -> np.ndarray:
    """Mean Q/K CKA per layer pair (NaN where no role is comparable): the listed pairs, or
    the full la x lb matrix (one stacked product per role) when ``pairs`` is None."""
    total = np.zeros((la, lb))
    count = np.zeros((la, lb))
    for role in ROLES:
        if pairs is None:
            rows = [i for i in range(la) if (role, i) in ga.k]
            cols = [j for j in range(lb) if (role, j) in gb.k]
            if not rows or not cols or len({ga.k[(role, i)].n for i in rows}
                                           | {gb.k[(role, j)].n for j in cols}) != 1:
                continue
            h = hsic_matrix([ga.k[(role, i)] for i in rows], [gb.k[(role, j)] for j in cols])
            sa = np.array([ga.self_hsic[(role, i)] for i in rows])[:, None]
            sb = np.array([gb.self_hsic[(role, j)] for j in cols])[None, :]
            ok = sa * sb > 0
            vals = np.where(ok, h / np.sqrt(np.where(ok, sa * sb, 1.0)), 0.0)
            total[np.ix_(rows, cols)] += vals
            count[np.ix_(rows, cols)] += ok
        else:
            keys = [((role, i), (role, j)) for i, j in pairs
                    if _comparable(ga, gb, (role, i), (role, j))]
            for ((_, i), (_, j)), c in zip(keys, _PairedCKA(ga, gb, keys)(), strict=True):
                total[i, j] += c
                count[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _aligned(pa: dict[tuple[str, int], np.ndarray], pb: dict[tuple[str, int], np.ndarray],
             al: Alignment | None) -> tuple[dict[tuple[str, int], np.ndarray],
                                            dict[tuple[str, int], np.ndarray]]:
    """Both sides restricted/ordered to the narrower model's residual dims, signs applied;
    under a rotation, A's sketches are rotated into B's basis (``M^T W^T R``)."""
    if al is None:
        return pa, pb
    if al.rotated and al.procrustes is not None:
        m = al.procrustes
        return {k: m.T @ v for k, v in pa.items() if v.shape[0] == m.shape[0]}, pb
    idx, sign = al.target_to_base, al.sign[:, None]
    if al.a_is_base:
        return {k: v[idx] * sign for k, v in pa.items()}, pb
    return pa, {k: v[idx] * sign for k, v in pb.items()}


#: Mean aligned CKA above which an uncalibrated layer alignment is used by the per-layer checks.
TRUSTED_ALIGNMENT = 0.5
NOT_CALIBRATED = ("no null panel of independent pairs for attention_cka; a shuffle of residual "
                  "dimensions is no null after an alignment chosen to match the two models")
P_METHOD = ("Student-t prediction p on the atanh scale from the panel's mean and sd "
            "(calibration.nulls.predictive_p); assumes an approximately normal null there")


class AttentionCKA:
    name: ClassVar[str] = "attention_cka"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {"alpha": 1e-6, "min_score": 0.05,
                                                 "layer_map": None}
    description: ClassVar[str] = (
        "Per-layer unbiased linear CKA between the two models' attention Q and K weights after "
        "aligning their residual dimensions through shared-token embeddings (AWM). Invariant "
        "to head permutation, scaling, GQA width and rotations of the output channels; "
        "survives fine-tuning, long continued pre-training, pruning and upcycling. Independent "
        "7B-14B models score about 0.004, but small models trained on similar data agree more "
        "after alignment (up to 0.28 on the lineage zoo), so the score is judged against a "
        "null panel of independent pairs; without one it is shown and cannot decide. Needs "
        "shared tokens or equal widths; blind to re-initialised attention."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        min_score = float(options.get("min_score", 0.05))
        fa, fb = a.fingerprint, b.fingerprint
        pa, pb = _projections(fa), _projections(fb)
        if not pa or not pb:
            return Evidence.not_applicable(self.name, self.strength,
                                           "a fingerprint holds no Q/K projection sketches",
                                           min_score)
        al = align_views(a, b)
        basis = al.describe() if al is not None else ""
        if al is None:
            if fa.architecture.hidden_size != fb.architecture.hidden_size:
                return Evidence.not_applicable(
                    self.name, self.strength,
                    "no shared tokens to align residual streams of different widths", min_score)
            basis = "identity (no shared-token embeddings; equal widths)"
        xa, xb = _aligned(pa, pb, al)
        ga, gb = _Grams(xa), _Grams(xb)
        la, lb = fa.num_layers, fb.num_layers
        layer_map = options.get("layer_map")
        if layer_map is None and la == lb:
            pairs = [(i, i) for i in range(la)]
        elif layer_map is not None:
            pairs = [(int(i), int(j)) for i, j in layer_map]
        else:
            pairs = []
        need_matrix = not pairs
        sim = _similarity(ga, gb, la, lb, None if need_matrix else pairs)
        alignment_text = None
        if need_matrix:
            filled = np.nan_to_num(sim, nan=0.0)
            la_res = align_layers(filled)
            pairs = la_res.mapping
            alignment_text = la_res.describe()
        per_layer = [{"layer_a": i, "layer_b": j, "cka": sim[i, j]} for i, j in pairs
                     if np.isfinite(sim[i, j])]
        if not per_layer:
            return Evidence.not_applicable(self.name, self.strength,
                                           "no layer with comparable Q/K sketches", min_score)
        score = float(np.mean([p["cka"] for p in per_layer]))
        panel = null_scores(self.name, "score")
        fit = predictive_p(score, panel, fisher_z=True) if panel is not None else None
        p: float | None = None
        indicates: bool | None = None
        reason: str | None = None
        if panel is None:
            null: dict[str, Any] = {"calibrated": False, "note": NOT_CALIBRATED}
            reason = f"not calibrated: {NOT_CALIBRATED}"
            calib = "not calibrated (no null panel of independent pairs; cannot decide)"
        else:
            p_emp = empirical_p(score, panel)
            null = {**panel.to_json(), "calibrated": True, "p_empirical": p_emp,
                    "p_method": P_METHOD}
            if fit is None:
                reason = (f"the null panel ({panel.size} pairs) is too small or flat for a "
                          "model-based p-value")
                calib = f"empirical p = {p_emp:.3g} vs {panel.size} independent pairs; {reason}"
            else:
                p = fit[1]
                indicates = bool(p <= alpha and score >= min_score)
                calib = (f"p = {p:.2g} vs {panel.size} independent pairs (t = {fit[0]:.1f}; "
                         f"empirical p {p_emp:.3g})")
        trusted = bool(indicates) if indicates is not None else score >= TRUSTED_ALIGNMENT
        said = alignment_text
        if alignment_text and not trusted:
            said = ("layers paired by dynamic programming, an alignment not trusted (the "
                    "layers are no more similar than independent models' can be)")
        summary = (f"mean CKA of aligned Q/K weights {score:.3f} over {len(per_layer)} layers; "
                   + calib + (f"; {said}" if said else ""))
        return Evidence(
            check=self.name, strength=self.strength, applicable=True, score=score,
            threshold=min_score, p_value=p, indicates_derivation=indicates, summary=summary,
            reason=reason,
            details={
                "basis": basis,
                "shared_tokens": al.shared_tokens if al else 0,
                "per_layer": per_layer,
                "layer_alignment": alignment_text,
                "layer_map": [list(x) for x in pairs],
                "similarity_matrix": None if not need_matrix else
                np.nan_to_num(sim, nan=0.0).round(4).tolist(),
                "null": null,
                "z": fit[0] if fit is not None else None,
                "alignment_trusted": trusted,
                "reference_values": "AWM: independent 7B-14B pairs 0.004 ± 0.003",
            },
        )


CHECK = AttentionCKA()
