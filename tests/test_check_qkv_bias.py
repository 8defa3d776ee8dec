"""qkv_bias on fingerprints whose truth is known."""

from __future__ import annotations

import json

import numpy as np

from modelprint.checks.base import ModelView
from modelprint.checks.qkv_bias import CHECK
from tests.curvefp import attention_curves, make_view

BIASES = ("attn.q_bias", "attn.k_bias", "attn.v_bias")
WIDTH = {"attn.q_bias": 64, "attn.k_bias": 32, "attn.v_bias": 32}


def biased_model(rng: np.random.Generator, layers: int = 24,
                 width: dict[str, int] | None = None) -> dict[str, list[np.ndarray]]:
    """Bias vectors whose per-layer scale follows a recipe shape with a model's own wiggle
    (Qwen-like: large early layers, then convergence)."""
    width = width or WIDTH
    t = np.linspace(0, 1, layers)
    out = {}
    for role, w in width.items():
        scale = 0.3 * (1 + 2 * np.exp(-6 * t)) * (1 + 0.1 * rng.standard_normal(layers))
        out[role] = [s * rng.standard_normal(w) for s in scale]
    return out


def view(name: str, vecs: dict[str, list[np.ndarray]], with_attention: bool = True,
         rng: np.random.Generator | None = None) -> ModelView:
    layers = len(next(iter(vecs.values())))
    curves = attention_curves(layers, rng or np.random.default_rng(0)) if with_attention else {}
    return make_view(name, curves, {r: [list(v) for v in vs] for r, vs in vecs.items()},
                     layers=layers)


def test_missing_biases_is_not_applicable_with_reason() -> None:
    rng = np.random.default_rng(1)
    llama = make_view("llama", attention_curves(24, rng))
    qwen = view("qwen", biased_model(rng))
    for a, b, who in ((llama, qwen, "candidate"), (qwen, llama, "reference")):
        ev = CHECK.compute(a, b, {})
        assert not ev.applicable and ev.indicates_derivation is None
        assert f"the {who} has no q/k/v biases" in (ev.reason or "")
    ev = CHECK.compute(llama, llama, {})
    assert "neither model" in (ev.reason or "")


def test_noisy_copy_is_indicated_with_vector_and_magnitude_agreement() -> None:
    rng = np.random.default_rng(2)
    a = biased_model(rng)
    b = {r: [v + 0.01 * np.std(v) * rng.standard_normal(v.size) for v in vs]
         for r, vs in a.items()}
    ev = CHECK.compute(view("a", a), view("b", b), {})
    assert ev.applicable and ev.score is not None and ev.score > 0.99
    assert ev.details["vector_centred_r"] > 0.99
    assert abs(ev.details["magnitude_ratio"] - 1) < 0.01
    assert ev.indicates_derivation is True
    json.dumps(ev.to_json(), allow_nan=False)


def test_same_curve_but_unrelated_vectors_is_not_indicated() -> None:
    """The curve statistic cannot tell these apart (identical std per layer); the vectors can."""
    rng = np.random.default_rng(3)
    a = biased_model(rng)
    b = {}
    for r, vs in a.items():
        b[r] = []
        for v in vs:
            w = rng.standard_normal(v.size)
            w = (w - w.mean()) / w.std(ddof=1) * v.std(ddof=1) + v.mean()
            b[r].append(w)
    ev = CHECK.compute(view("a", a), view("b", b), {})
    assert ev.score is not None and ev.score > 0.999  # the seed would call this a copy
    assert abs(ev.details["vector_centred_r"]) < 0.2
    assert ev.indicates_derivation is False
    assert "vector centred r" in ev.details["rule"]


def test_rescaled_biases_are_not_indicated() -> None:
    """Curve normalisation hides a 3x bias scale; the magnitude ratio does not."""
    rng = np.random.default_rng(4)
    a = biased_model(rng)
    b = {r: [3.0 * v for v in vs] for r, vs in a.items()}
    ev = CHECK.compute(view("a", a), view("b", b), {})
    assert ev.score is not None and ev.score > 0.999
    assert abs(ev.details["magnitude_ratio"] - 1 / 3) < 1e-9
    assert ev.indicates_derivation is False and "magnitudes differ" in ev.summary
    relaxed = CHECK.compute(view("a", a), view("b", b), {"max_magnitude_ratio": 4.0})
    assert relaxed.indicates_derivation is True


def test_independent_biased_models_are_not_indicated() -> None:
    rng = np.random.default_rng(5)
    ev = CHECK.compute(view("a", biased_model(rng)), view("b", biased_model(rng)), {})
    assert ev.applicable and ev.indicates_derivation is False
    assert abs(ev.details["vector_centred_r"]) < 0.2


def test_different_widths_compare_curves_only() -> None:
    rng = np.random.default_rng(6)
    a = biased_model(rng)
    b = biased_model(rng, width={"attn.q_bias": 96, "attn.k_bias": 48, "attn.v_bias": 48})
    ev = CHECK.compute(view("a", a), view("b", b), {})
    assert ev.applicable and ev.details["vector_centred_r"] is None
    assert ev.details["vectors"]["attn.q_bias"]["shapes_match"] is False
    assert "n/a" in ev.summary


def test_curves_computed_from_vectors_when_fingerprint_has_no_bias_curve() -> None:
    rng = np.random.default_rng(7)
    a = biased_model(rng)
    b = biased_model(rng)
    ev = CHECK.compute(view("a", a), view("b", b), {})  # make_view stores no bias curves
    std = np.array([np.std(v, ddof=1) for v in a["attn.q_bias"]])
    want = (std - std.mean()) / std.std()
    np.testing.assert_allclose(ev.details["curves"]["attn.q_bias"]["a"], want, atol=1e-12)
