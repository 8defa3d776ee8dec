"""One rule for what a check or verdict means for a test item, used by the plugin's items and by
the result JSON alike: ``passed``, ``failed`` or ``skipped``, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelprint.checks.base import Evidence

#: Family-wise level of the verdict (audit YAML ``alpha``, ``--modelprint-alpha``).
DEFAULT_ALPHA = 1e-6
VERDICTS = ("derived", "independent", "inconclusive")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    """One test item's result: ``passed``, ``failed`` or ``skipped``, and why."""

    status: str
    message: str


def check_outcome(ev: Evidence, expect: str | None) -> Outcome:
    """A check item: skipped when the check does not apply or gives no information; failed
    when ``expect`` is independent (or unset) and the check indicates derivation."""
    if not ev.applicable:
        return Outcome(SKIPPED, f"{ev.check} not applicable: {ev.reason or ev.summary or '-'}")
    assertion = ev.details.get("assertion") if isinstance(ev.details, dict) else None
    if isinstance(assertion, dict) and "holds" in assertion:
        # a context check asserting the user's own bounds (merge_recipe): whatever `expect`
        return Outcome(PASSED if assertion["holds"] else FAILED, f"{ev.check}: {ev.summary}")
    if ev.indicates_derivation is None:
        return Outcome(SKIPPED, f"{ev.check} gives no information: "
                                f"{ev.reason or ev.summary or '-'}")
    if ev.indicates_derivation and expect != "derived":
        return Outcome(FAILED, f"{ev.check} indicates derivation: {ev.summary}")
    return Outcome(PASSED, ev.summary)


def verdict_outcome(verdict: str, reason: str, expect: str | None) -> Outcome:
    """The verdict item: ``expect: derived`` needs a derived verdict; ``independent`` (and
    compare's unset expectation) fails only on a derived verdict."""
    if expect == "derived":
        if verdict == "derived":
            return Outcome(PASSED, f"derived, as expected: {reason}")
        return Outcome(FAILED, f"expected derived, verdict is {verdict}: {reason}")
    if verdict == "derived":
        return Outcome(FAILED, f"expected independent, verdict is derived: {reason}")
    return Outcome(PASSED, f"{verdict}: {reason}")


def pair_outcome(pair: Mapping[str, Any]) -> str:
    """``failed`` when the verdict item or any check item failed (or raised)."""
    if pair.get("errors"):
        return FAILED
    if pair.get("verdict") is not None and verdict_outcome(
            pair["verdict"], pair.get("verdict_reason", ""), pair.get("expect")).status == FAILED:
        return FAILED
    if any(c.get("outcome") == FAILED for c in pair.get("checks", {}).values()):
        return FAILED
    return PASSED


def decide(evidence: Mapping[str, Evidence], alpha: float, n_tests: int) -> tuple[str, str]:
    """``(verdict, reason)`` by :func:`modelprint.verdict.decide` at family-wise level
    ``alpha`` over ``n_tests`` comparisons."""
    from modelprint.verdict import decide as _decide

    result = _decide(evidence, alpha=alpha, n_comparisons=n_tests)
    if result.label not in VERDICTS:
        raise ValueError(f"verdict.decide returned {result.label!r}")
    return result.label, result.reason
