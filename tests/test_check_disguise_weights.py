"""Weight-space checks against function-preserving disguises (issue: disguised copies).

A copy whose norm gains were folded into the weights, whose residual stream was rotated by a
random orthogonal matrix and whose hidden units were permuted computes the same function as its
original. These tests build such copies from the synthetic models of
``test_check_mlp_matching.py`` (gains included) and check what a user would see: the
alignment names the rotation, ``mlp_matching`` finds the copy with full weights, says why it
cannot from sketches alone, and independent models stay independent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelprint.checks.alignment import align
from modelprint.checks.attention_cka import CHECK as CKA
from modelprint.checks.base import ModelView
from modelprint.checks.mlp_matching import CHECK as MLP
from modelprint.checks.weights_cosine import CHECK as COSINE
from tests.test_check_mlp_matching import ALPHA, Weights, dense, noisy, units_map, view

D = 64


def gains(seed: int, layers: int = 4) -> dict[str, list[list[float]]]:
    """Pre-norm gains of a trained-looking model: positive, uneven across dimensions."""
    rng = np.random.default_rng(seed)
    return {n: [list(np.abs(1.0 + 0.5 * rng.normal(size=D))) for _ in range(layers)]
            for n in ("norm.attn", "norm.mlp")}


def orthogonal(seed: int, d: int = D) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return np.asarray(q * np.sign(np.diag(r)))


def with_attention(ws: Weights, seed: int, layers: int = 4) -> Weights:
    rng = np.random.default_rng(seed)
    out = dict(ws)
    for i in range(layers):
        for role in ("attn.q", "attn.k"):
            out[(role, i, None)] = rng.normal(0, 0.02, (D, D))
    return out


def fold_and_rotate(ws: Weights, g: dict[str, list[list[float]]], q: np.ndarray
                    ) -> tuple[Weights, dict[str, list[list[float]]]]:
    """QuaRot's re-parameterisation: readers W diag(g) Q, writers Q^T W, embedding E Q,
    gains set to 1."""
    out: Weights = {}
    for (role, layer, e), w in ws.items():
        if role == "embed":
            out[(role, layer, e)] = w @ q
        elif role in ("mlp.up", "mlp.gate"):
            out[(role, layer, e)] = (w * np.asarray(g["norm.mlp"][layer])) @ q
        elif role in ("attn.q", "attn.k"):
            out[(role, layer, e)] = (w * np.asarray(g["norm.attn"][layer])) @ q
        elif role == "mlp.down":
            out[(role, layer, e)] = q.T @ w
        else:
            out[(role, layer, e)] = w
    ones = {n: [[1.0] * D for _ in v] for n, v in g.items()}
    return out, ones


def model(ws: Weights, g: dict[str, list[list[float]]], name: str, *,
          weights: bool = True) -> ModelView:
    v = view(ws, name, weights=weights)
    v.fingerprint.vectors.update(g)
    if any(r == "attn.q" for r, _, _ in ws):
        from modelprint.fingerprint.sketches import projection_entry, slot_key
        assert v.fingerprint.sketches is not None
        v.fingerprint.sketches["projection"] = {
            slot_key(r, lay, e): projection_entry(w) for (r, lay, e), w in ws.items()
            if r in ("attn.q", "attn.k")}
    return v


def permute_units(ws: Weights, seed: int) -> Weights:
    perms = {i: np.random.default_rng(seed + i).permutation(128) for i in range(4)}
    return units_map(ws, lambda layer, n: perms[layer])


def mlp(a: ModelView, b: ModelView) -> Any:
    return MLP.compute(a, b, {"alpha": ALPHA})


@pytest.fixture
def base() -> tuple[Weights, dict[str, list[list[float]]]]:
    return dense(1), gains(2)


def test_alignment_recovers_a_rotation_and_names_it(base: Any) -> None:
    ws, g = base
    q = orthogonal(5)
    rot, ones = fold_and_rotate(noisy(ws, 3, 0.002), g, q)
    al = align(model(rot, ones, "cand").fingerprint, model(ws, g, "ref").fingerprint)
    assert al is not None and al.rotated
    assert al.rotation_residual is not None and al.rotation_residual < 0.2
    assert al.permutation_residual > 1.0
    # the rotation itself is recovered: the map from the candidate into the reference basis
    assert al.procrustes is not None and np.abs(al.procrustes - q.T).max() < 0.1
    assert "residual stream rotated: orthogonal fit residual" in al.describe()


def test_a_signed_permutation_stays_a_permutation(base: Any) -> None:
    ws, g = base
    perm = np.random.default_rng(4).permutation(D)
    sign = np.where(np.random.default_rng(5).random(D) < 0.5, -1.0, 1.0)
    q = np.zeros((D, D))
    q[np.arange(D), perm] = sign
    moved = {k: (w @ q if k[0] in ("embed", "mlp.up", "mlp.gate") else
                 q.T @ w if k[0] == "mlp.down" else w) for k, w in noisy(ws, 3, 0.002).items()}
    al = align(model(moved, g, "cand").fingerprint, model(ws, g, "ref").fingerprint)
    assert al is not None and not al.rotated
    assert al.permutation_residual < 0.2


def test_rotated_folded_permuted_copy_is_found_with_full_weights(base: Any) -> None:
    ws, g = base
    rot, ones = fold_and_rotate(permute_units(noisy(ws, 3, 0.005), 40), g, orthogonal(6))
    ev = mlp(model(rot, ones, "cand"), model(ws, g, "ref"))
    assert ev.indicates_derivation is True and ev.p_value is not None and ev.p_value < 1e-30
    assert ev.details["residual_rotated"] is True
    # the order arm cannot see permuted units; the two views agreeing is what finds it
    assert ev.details["order_test"]["log10_p"] > -6
    assert ev.details["consistency_test"]["log10_p"] < -30
    assert "residual stream rotated" in ev.summary
    assert "norm gains are folded" in ev.summary


def test_rotation_without_permutation_keeps_an_exact_order_test(base: Any) -> None:
    ws, g = base
    rot, ones = fold_and_rotate(noisy(ws, 3, 0.01), g, orthogonal(7))
    ev = mlp(model(rot, ones, "cand"), model(ws, g, "ref"))
    assert ev.indicates_derivation is True
    assert ev.details["order_test"]["log10_p"] < -30


def test_sketches_cannot_undo_a_rotation_and_say_so(base: Any) -> None:
    ws, g = base
    rot, ones = fold_and_rotate(noisy(ws, 3, 0.005), g, orthogonal(8))
    ev = mlp(model(rot, ones, "cand", weights=False), model(ws, g, "ref", weights=False))
    assert ev.applicable is False
    assert "rotation" in (ev.reason or "") and "full weights" in (ev.reason or "")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_independent_models_are_not_matched_after_a_rotation_fit(seed: int) -> None:
    a, ga = dense(seed), gains(seed + 100)
    b, gb = dense(seed + 50), gains(seed + 150)
    al = align(model(a, ga, "a").fingerprint, model(b, gb, "b").fingerprint)
    assert al is not None and not al.rotated
    ev = mlp(model(a, ga, "a"), model(b, gb, "b"))
    assert ev.indicates_derivation is False
    # and an independent model that *was* rotated is still independent
    rot, ones = fold_and_rotate(a, ga, orthogonal(seed))
    ev = mlp(model(rot, ones, "a-rot"), model(b, gb, "b"))
    assert ev.indicates_derivation is False


def test_folded_gains_alone_leave_element_wise_evidence(base: Any) -> None:
    """Folding without rotation: canonical weights are equal, so the sketches' cosine test
    (fingerprint-only references too) finds the copy."""
    ws, g = base
    folded, ones = fold_and_rotate(noisy(ws, 3, 0.002), g, np.eye(D))
    ev = COSINE.compute(model(folded, ones, "cand", weights=False),
                        model(ws, g, "ref", weights=False), {"alpha": ALPHA})
    assert ev.indicates_derivation is True and ev.score is not None and ev.score > 0.95


def test_attention_cka_rotates_projection_sketches(base: Any) -> None:
    """Q/K projection sketches keep the whole residual axis, so a rotation can be undone on
    them even for fingerprint-only references (the score; deciding needs a null panel)."""
    ws, g = base
    ws = with_attention(ws, 9)
    rot, ones = fold_and_rotate(noisy(ws, 3, 0.002), g, orthogonal(10))
    ev = CKA.compute(model(rot, ones, "cand", weights=False), model(ws, g, "ref", weights=False),
                     {"alpha": ALPHA, "min_score": 0.05, "layer_map": None})
    assert ev.score is not None and ev.score > 0.9
    assert "residual stream rotated" in ev.details["basis"]
    other = with_attention(dense(21), 22)
    ev2 = CKA.compute(model(other, gains(23), "other", weights=False),
                      model(ws, g, "ref", weights=False),
                      {"alpha": ALPHA, "min_score": 0.05, "layer_map": None})
    assert ev2.score is not None and ev2.score < 0.3


def test_basis_bound_checks_abstain_on_a_rotated_copy(base: Any) -> None:
    """A rotated copy compared through fingerprints alone: the element-wise and order tests
    are blind to it, so they must say "no information", never "no" (which would make the
    verdict 'independent')."""
    from modelprint.checks.embedding_alignment import CHECK as EMBED

    ws, g = base
    rot, ones = fold_and_rotate(noisy(ws, 3, 0.002), g, orthogonal(12))
    cand, ref = model(rot, ones, "cand", weights=False), model(ws, g, "ref", weights=False)
    for check in (COSINE, EMBED):
        ev = check.compute(cand, ref, {"alpha": ALPHA})
        assert ev.applicable and ev.indicates_derivation is None, check.name
        assert "residual stream rotated" in (ev.reason or "")
    # an independent pair keeps its negative answers
    other = model(dense(31), gains(32), "other", weights=False)
    for check in (COSINE, EMBED):
        assert check.compute(other, ref, {"alpha": ALPHA}).indicates_derivation is False


class VocabWeights:
    """Full weights that also know their vocabulary (as a real model source does)."""

    def __init__(self, inner: Any, vocab: list[str]) -> None:
        self.inner, self.vocab = inner, vocab

    def vocabulary(self) -> list[str]:
        return self.vocab

    def get(self, *args: Any, **kw: Any) -> Any:
        return self.inner.get(*args, **kw)

    def rows(self, *args: Any, **kw: Any) -> Any:
        return self.inner.rows(*args, **kw)


def test_a_wide_rotated_copy_is_aligned_from_more_tokens_of_the_full_weights() -> None:
    """The fingerprint samples fewer tokens than a wide model has dimensions: the rotation is
    detected from them but can only be fitted on more rows read from the weights."""
    from modelprint.fingerprint.sketches import embedding_entry
    from tests.test_check_mlp_matching import TOKENS

    d = 96
    rng = np.random.default_rng(3)
    ws: Weights = {("embed", None, None): rng.normal(0, 0.02, (len(TOKENS), d))}
    for i in range(2):
        ws[("mlp.up", i, None)] = rng.normal(0, 0.02, (128, d))
        ws[("mlp.gate", i, None)] = rng.normal(0, 0.02, (128, d))
        ws[("mlp.down", i, None)] = rng.normal(0, 0.02, (d, 128))
    q = orthogonal(14, d)
    rot = {k: (w @ q if k[0] in ("embed", "mlp.up", "mlp.gate") else
               q.T @ w if k[0] == "mlp.down" else w) for k, w in noisy(ws, 5, 0.002).items()}

    def wide_view(w: Weights, name: str, full: bool) -> ModelView:
        v = view(w, name)
        sample = TOKENS[:80]                       # fewer sampled tokens than dimensions
        assert v.fingerprint.sketches is not None
        v.fingerprint.sketches["embedding"] = embedding_entry(sample, w[("embed", None, None)][:80])
        return ModelView(v.fingerprint, VocabWeights(v.weights, TOKENS) if full else None)

    ev = mlp(wide_view(rot, "cand", True), wide_view(ws, "ref", True))
    assert ev.indicates_derivation is True and ev.details["residual_rotated"] is True
    assert "of 256 shared tokens" in ev.summary
    ev = mlp(wide_view(rot, "cand", False), wide_view(ws, "ref", False))
    assert not ev.applicable and "rotation" in (ev.reason or "")


@pytest.mark.parametrize("n,da,db", [(300, 64, 64), (100, 64, 48), (50, 40, 96), (256, 128, 128)])
def test_cheap_procrustes_residual_equals_the_direct_fit(n: int, da: int, db: int) -> None:
    """The residual from the thin-QR core equals the residual of the formed map, for any
    token count and either width order."""
    from modelprint.checks.alignment import fit_residual, procrustes, procrustes_residual

    rng = np.random.default_rng(n + da + db)
    xa, xb = rng.normal(size=(n, da)), rng.normal(size=(n, db))
    xb[:, : min(da, db)] += xa[:, : min(da, db)]          # some shared structure
    assert procrustes_residual(xa, xb) == pytest.approx(
        fit_residual(xa, xb, procrustes(xa, xb)), rel=1e-9, abs=1e-12)
