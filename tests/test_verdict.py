"""verdict.decide: only decisive evidence can make 'derived'."""

from __future__ import annotations

import pytest

from modelprint.checks.base import Evidence
from modelprint.verdict import DERIVED, INCONCLUSIVE, INDEPENDENT, decide


def ev(check: str, strength: str, *, indicates: bool | None, p: float | None = None,
       score: float | None = 0.5, applicable: bool = True, summary: str = "",
       reason: str | None = None) -> Evidence:
    return Evidence(check=check, strength=strength, applicable=applicable, score=score,
                    p_value=p, indicates_derivation=indicates, summary=summary, reason=reason)


def weak_high() -> Evidence:
    return ev("attention_std", "weak", indicates=True, score=0.97)


def test_weak_statistics_alone_are_inconclusive_and_named() -> None:
    v = decide({"attention_std": weak_high(),
                "weights_cosine": ev("weights_cosine", "decisive", indicates=None,
                                     applicable=False, reason="shapes differ")})
    assert v.label == INCONCLUSIVE
    assert "only weak curve statistics indicate derivation" in v.reason
    assert "attention_std r=0.97" in v.reason
    assert "no decisive test applies" in v.reason and "shapes differ" in v.reason


def test_weak_check_with_tiny_p_value_still_never_derives() -> None:
    weak = ev("attention_std", "weak", indicates=True, p=1e-30, score=0.999)
    ctx = ev("license", "context", indicates=True, p=1e-30, summary="Qwen license found")
    v = decide({"attention_std": weak, "license": ctx})
    assert v.label == INCONCLUSIVE and "Qwen license found" in v.reason


def test_decisive_rejection_after_bonferroni_is_derived() -> None:
    d = ev("weights_cosine", "decisive", indicates=True, p=1e-12, score=0.8)
    v = decide({"weights_cosine": d}, alpha=1e-6, n_comparisons=4)
    assert v.label == DERIVED and "weights_cosine" in v.reason and "1e-06/4" in v.reason


def test_p_that_does_not_survive_the_correction_is_inconclusive() -> None:
    d = ev("weights_cosine", "decisive", indicates=True, p=5e-7)
    assert decide({"w": d}, alpha=1e-6).label == DERIVED
    v = decide({"w": d}, alpha=1e-6, n_comparisons=3)
    assert v.label == INCONCLUSIVE and "does not survive" in v.reason


def test_correction_counts_decisive_checks_even_if_caller_says_one() -> None:
    a = ev("cka", "decisive", indicates=True, p=8e-7)
    b = ev("mlp_match", "decisive", indicates=False, p=0.3)
    assert decide({"cka": a, "mlp_match": b}, alpha=1e-6, n_comparisons=1).label == INCONCLUSIVE


def test_exact_decisive_finding_is_derived() -> None:
    ident = ev("identity", "decisive", indicates=True, p=None, score=12,
               summary="12 tensors are byte-identical")
    v = decide({"identity": ident, "attention_std": weak_high()})
    assert v.label == DERIVED and "byte-identical" in v.reason


def test_decisive_checks_finding_nothing_is_independent_even_if_weak_is_high() -> None:
    v = decide({"weights_cosine": ev("weights_cosine", "decisive", indicates=False, p=0.4,
                                     score=0.001),
                "identity": ev("identity", "decisive", indicates=False, score=0.0),
                "attention_std": weak_high()})
    assert v.label == INDEPENDENT
    assert "weights_cosine" in v.reason and "cannot decide" in v.reason


def test_no_evidence_at_all_is_inconclusive() -> None:
    v = decide({})
    assert v.label == INCONCLUSIVE and "no decisive test applies" in v.reason


def test_weak_low_and_no_decisive_is_inconclusive_with_numbers() -> None:
    low = ev("attention_std", "weak", indicates=False, score=0.41)
    v = decide({"attention_std": low})
    assert v.label == INCONCLUSIVE
    assert "weak statistics find nothing notable (attention_std r=0.41" in v.reason


@pytest.mark.parametrize("label", [DERIVED, INDEPENDENT, INCONCLUSIVE])
def test_verdict_serialises(label: str) -> None:
    from modelprint.verdict import Verdict
    assert Verdict(label, "why").to_json() == {"label": label, "reason": "why"}


def test_identity_finding_no_copy_alone_does_not_make_independent() -> None:
    """Byte comparison cannot see a derivative that was trained further, so its silence is
    not evidence of independence (e.g. two models of different widths and vocabularies)."""
    v = decide({"identity": ev("identity", "decisive", indicates=False)})
    assert v.label == INCONCLUSIVE
    assert "rules out copies only" in v.reason
    both = decide({"identity": ev("identity", "decisive", indicates=False),
                   "weights_cosine": ev("weights_cosine", "decisive", indicates=False, p=0.4)})
    assert both.label == INDEPENDENT and "identity" in both.reason
