"""The seed checks on the real models of shared/MODELS.md.

Gemma 3 270M and SmolLM2-135M are independent (Google vs Hugging Face); none of the weak checks
may indicate derivation for them, whatever alignment is supplied.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from modelprint.checks.attention_std import CHECK as ATTN
from modelprint.checks.base import ModelView
from modelprint.checks.layernorm import CHECK as NORM
from modelprint.checks.qkv_bias import CHECK as BIAS
from modelprint.models import load_model
from modelprint.verdict import DERIVED, decide

pytestmark = [pytest.mark.real, pytest.mark.slow]
SEED = (ATTN, BIAS, NORM)


@pytest.fixture(scope="module")
def gemma(gemma3_gguf: Path) -> ModelView:
    return load_model(str(gemma3_gguf))


@pytest.fixture(scope="module")
def smol(smollm2_gguf: Path) -> ModelView:
    return load_model(str(smollm2_gguf))


def _monotone_map(n_a: int, n_b: int) -> list[list[int]]:
    return [[i, round(i * (n_b - 1) / (n_a - 1))] for i in range(n_a)]


def test_gemma3_vs_smollm2_never_indicates_derivation(gemma: ModelView,
                                                      smol: ModelView) -> None:
    for a, b in ((gemma, smol), (smol, gemma)):
        for check in SEED:
            ev = check.compute(a, b, {})
            assert ev.indicates_derivation is not True, ev.summary
            json.dumps(ev.to_json(), allow_nan=False)
    ev = ATTN.compute(gemma, smol, {})
    assert not ev.applicable and "18 vs 30" in (ev.reason or "")
    bias = BIAS.compute(gemma, smol, {})
    assert not bias.applicable and "neither model has q/k/v biases" in (bias.reason or "")
    assert decide({c.name: c.compute(gemma, smol, {}) for c in SEED}).label != DERIVED


def test_gemma3_flat_qkv_give_no_information_under_an_alignment(gemma: ModelView,
                                                                smol: ModelView) -> None:
    opts = {"layer_map": _monotone_map(gemma.fingerprint.num_layers,
                                       smol.fingerprint.num_layers)}
    ev = ATTN.compute(gemma, smol, opts)
    assert ev.applicable and ev.details["informative"] == ["attn.o"]
    assert set(ev.details["flat"]) == {"attn.q", "attn.k", "attn.v"}
    assert ev.indicates_derivation is False
    norm = NORM.compute(gemma, smol, opts)
    assert norm.applicable and norm.indicates_derivation is False
    assert norm.details["vector_centred_r"] is None  # widths 640 vs 576: curves only


def test_a_lightly_perturbed_copy_of_smollm2_curves_is_indicated(smol: ModelView) -> None:
    """SmolLM2's real curve shapes: a copy whose per-layer stds moved by 0.1 % is found."""
    rng = np.random.default_rng(0)
    fp = copy.deepcopy(smol.fingerprint)
    for stats in fp.curves.values():
        stats["std"] = [None if v is None else v * (1 + 1e-3 * rng.standard_normal())
                        for v in stats["std"]]
    fp.vectors = {r: [None if v is None else list(np.asarray(v) + 1e-3 * rng.standard_normal(
        len(v))) for v in vs] for r, vs in fp.vectors.items()}
    tuned = ModelView(fp)
    ev = ATTN.compute(tuned, smol, {})
    assert ev.score is not None and ev.score > 0.99 and ev.indicates_derivation is True
    assert NORM.compute(tuned, smol, {}).indicates_derivation is True
    # weak evidence alone never makes the verdict "derived"
    assert decide({"attention_std": ev}).label != DERIVED


def test_minilm_biases_compare_but_six_layers_are_too_few_to_indicate(minilm_dir: Path) -> None:
    m = load_model(str(minilm_dir))
    ev = BIAS.compute(m, m, {})
    assert ev.applicable and ev.details["vector_centred_r"] == pytest.approx(1.0)
    assert ev.indicates_derivation is False and "min_layers" in ev.summary
