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

p-value: the mean CKA is compared with its distribution when one model's residual dimensions
are shuffled (one shuffle shared by all layers, as the null of exchangeable residual
dimensions implies), z against that null, normal tail. Because two independently trained
models can share some structure after alignment, the check also requires the score to reach
``min_score`` (default 0.05, an order of magnitude above AWM's independent pairs) before it
indicates derivation.

Cost: the HSICs are computed from the d x 32 projection sketches without forming any d x d
Gram (``checks/cka.py``), batched over layers and roles; a shuffle permutes d rows of the
sketches. That is linear in width and depth (~0.2 s for a SmolLM2 pair, ~0.7 s at 2048 x 32
layers; ``benchmarks/audit/RESULTS.md``), so no row subsampling, float32 or reduced shuffle
count is used: the statistic is exactly the unbiased CKA over all residual dimensions.

Cannot show: derivatives that re-initialised attention; models without a common residual
basis (no shared tokens and different widths).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import stats

from modelprint.checks.alignment import Alignment, align
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.cka import Gram, PairedHSIC, hsic_matrix, hsic_paired
from modelprint.checks.layer_alignment import align_layers
from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode, slot_key

ROLES = ("attn.q", "attn.k")
N_SHUFFLES = 20


def _projections(fp: Fingerprint) -> dict[tuple[str, int], np.ndarray]:
    proj = (fp.sketches or {}).get("projection", {})
    out = {}
    for role in ROLES:
        for layer in range(fp.num_layers):
            entry = proj.get(slot_key(role, layer, None))
            if entry is not None:
                out[(role, layer)] = decode(entry)
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
    """CKA of each comparable (key_a, key_b), side b's samples optionally permuted."""

    def __init__(self, ga: _Grams, gb: _Grams,
                 keys: list[tuple[tuple[str, int], tuple[str, int]]]) -> None:
        self.hsic = PairedHSIC([ga.k[a] for a, _ in keys], [gb.k[b] for _, b in keys])
        self.den = np.sqrt(np.array([ga.self_hsic[a] * gb.self_hsic[b] for a, b in keys]))

    def __call__(self, perm: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(self.hsic(perm) / self.den, dtype=np.float64)


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
    """Both sides restricted/ordered to the narrower model's residual dims, signs applied."""
    if al is None:
        return pa, pb
    idx, sign = al.target_to_base, al.sign[:, None]
    if al.a_is_base:
        return {k: v[idx] * sign for k, v in pa.items()}, pb
    return pa, {k: v[idx] * sign for k, v in pb.items()}


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
        "models score about 0. Needs shared tokens or equal widths; blind to re-initialised "
        "attention."
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
        al = align(fa, fb)
        basis = "shared-token embedding alignment"
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
        n = next(iter(gb.k.values())).n
        keys = [((r, p["layer_a"]), (r, p["layer_b"])) for p in per_layer for r in ROLES
                if _comparable(ga, gb, (r, p["layer_a"]), (r, p["layer_b"]))]
        paired = _PairedCKA(ga, gb, keys)
        rng = np.random.default_rng(0)
        null = []
        for _ in range(N_SHUFFLES):
            vals = paired(rng.permutation(n))
            null.append(float(np.mean(vals)) if len(vals) else 0.0)
        null_mean, null_sd = float(np.mean(null)), float(np.std(null, ddof=1))
        z = (score - null_mean) / null_sd if null_sd > 0 else float("inf")
        p = float(stats.norm.sf(z))
        indicates = bool(p <= alpha and score >= min_score)
        summary = (f"mean CKA of aligned Q/K weights {score:.3f} over {len(per_layer)} layers "
                   f"(shuffled null {null_mean:.4f} ± {null_sd:.4f}, z = {z:.1f})"
                   + (f"; {alignment_text}" if alignment_text else ""))
        return Evidence(
            check=self.name, strength=self.strength, applicable=True, score=score,
            threshold=min_score, p_value=p, indicates_derivation=indicates, summary=summary,
            details={
                "basis": basis,
                "shared_tokens": al.shared_tokens if al else 0,
                "per_layer": per_layer,
                "layer_alignment": alignment_text,
                "layer_map": [list(x) for x in pairs],
                "similarity_matrix": None if not need_matrix else
                np.nan_to_num(sim, nan=0.0).round(4).tolist(),
                "null": {"mean": null_mean, "sd": null_sd, "shuffles": N_SHUFFLES,
                         "scores": null,
                         "source": "residual dimensions of the reference shuffled"},
                "z": z,
                "reference_values": "AWM: independent 7B-14B pairs 0.004 ± 0.003",
            },
        )


CHECK = AttentionCKA()
