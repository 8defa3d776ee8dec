"""layernorm on fingerprints whose truth is known: the Solar-vs-GLM trap in miniature."""

from __future__ import annotations

import json

import numpy as np

from modelprint.checks.base import ModelView
from modelprint.checks.layernorm import CHECK
from tests.curvefp import attention_curves, make_view


def gains(rng: np.random.Generator, layers: int = 24, width: int = 256,
          offset: float = 0.0) -> dict[str, list[np.ndarray]]:
    """Trained-looking RMSNorm gains: positive, near a per-layer level, with a model-specific
    spread per coordinate. ``offset`` shifts them (Gemma's 1 + w convention)."""
    t = np.linspace(0, 1, layers)
    out = {}
    for role in ("norm.attn", "norm.mlp"):
        level = (0.5 + t) * (1 + 0.05 * rng.standard_normal(layers))
        spread = 0.1 * (1 + t) * (1 + 0.1 * rng.standard_normal(layers))
        out[role] = [offset + lv + sp * rng.standard_normal(width)
                     for lv, sp in zip(level, spread, strict=True)]
    return out


def view(name: str, g: dict[str, list[np.ndarray]]) -> ModelView:
    layers = len(g["norm.attn"])
    return make_view(name, attention_curves(layers, np.random.default_rng(0)),
                     {r: [list(v) for v in vs] for r, vs in g.items()}, layers=layers)


def test_independent_models_have_cosine_near_one_but_centred_r_near_zero() -> None:
    rng = np.random.default_rng(1)
    ev = CHECK.compute(view("a", gains(rng)), view("b", gains(rng)), {})
    assert ev.applicable and ev.indicates_derivation is False
    assert ev.details["uncentred_cosine_not_evidence"] > 0.95  # the trap
    assert abs(ev.details["vector_centred_r"]) < 0.1
    json.dumps(ev.to_json(), allow_nan=False)


def test_fine_tuned_copy_is_indicated() -> None:
    rng = np.random.default_rng(2)
    a = gains(rng)
    b = {r: [v + 0.005 * rng.standard_normal(v.size) for v in vs] for r, vs in a.items()}
    ev = CHECK.compute(view("a", a), view("b", b), {})
    assert ev.score is not None and ev.score > 0.99
    assert ev.details["vector_centred_r"] > 0.99
    assert ev.indicates_derivation is True


def test_offset_convention_does_not_change_the_evidence() -> None:
    """Centred r and std curves ignore a constant (1 + w) offset; only the cosine moves."""
    rng = np.random.default_rng(3)
    base = gains(rng)
    shifted = {r: [v + 1.0 for v in vs] for r, vs in base.items()}
    other = gains(rng)
    plain = CHECK.compute(view("a", base), view("b", other), {})
    moved = CHECK.compute(view("a", shifted), view("b", other), {})
    assert moved.score is not None and plain.score is not None
    assert abs(moved.score - plain.score) < 1e-9
    assert abs(moved.details["vector_centred_r"] - plain.details["vector_centred_r"]) < 1e-9


def test_no_norms_is_not_applicable() -> None:
    rng = np.random.default_rng(4)
    bare = make_view("bare", attention_curves(24, rng))
    ev = CHECK.compute(bare, view("b", gains(rng)), {})
    assert not ev.applicable and "the candidate has no norm gains" in (ev.reason or "")


def test_flat_gains_at_init_are_no_information() -> None:
    ones = {r: [np.ones(256) for _ in range(24)] for r in ("norm.attn", "norm.mlp")}
    ev = CHECK.compute(view("init", ones), view("init2", ones), {})
    assert ev.applicable and ev.score is None and ev.indicates_derivation is None
    assert "no information" in ev.summary


def test_roles_option_selects_norms() -> None:
    rng = np.random.default_rng(5)
    a = gains(rng)
    ev = CHECK.compute(view("a", a), view("b", gains(rng)), {"roles": ["norm.mlp"]})
    assert list(ev.details["per_role"]) == ["norm.mlp"]
