"""Combine one pair's evidence into ``derived`` / ``independent`` / ``inconclusive``.

Calling a model derived is an accusation, so only decisive evidence can make it:

* ``derived`` — a *decisive* check indicates derivation and either rejects independence at the
  family-wise level (``p_value ≤ alpha / n``, Bonferroni over references × checks), or reports
  an exact finding (a decisive check that indicates derivation without a p-value asserts a
  deterministic fact, e.g. byte-identical tensors, that is not a chance event under
  independence).
* ``independent`` — at least one decisive check applied and gave an answer, and none found
  anything. Weak statistics that are high are named in the reason but do not change this:
  their false-positive rate is why they are weak.
* ``inconclusive`` — everything else: no decisive check applied, or one indicated derivation
  with a p-value that does not survive the correction. The reason names what fired, e.g.
  "only weak curve statistics indicate derivation (attention_std r=0.97, not calibrated);
  no decisive test applies".

Weak (seed curve statistics) and context (license files) checks never make ``derived``.
``n`` is the larger of ``n_comparisons`` (the caller's references × checks) and the number of
decisive checks carrying a p-value here, so the correction never undercounts this pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from modelprint.checks.base import CONTEXT, DECISIVE, WEAK, Evidence

DERIVED, INDEPENDENT, INCONCLUSIVE = "derived", "independent", "inconclusive"

#: Decisive checks that can prove a copy but whose silence says nothing about a derivative that
#: was trained further (every byte changes): their negative result alone never makes a pair
#: ``independent``.
COPY_ONLY = frozenset({"identity"})


@dataclass(frozen=True)
class Verdict:
    label: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _num(e: Evidence) -> str:
    parts = []
    if e.score is not None:
        parts.append(f"{'r' if e.strength == WEAK else 'score'}={e.score:.3g}")
    if e.p_value is not None:
        parts.append(f"p={e.p_value:.2g}")
    elif e.strength == WEAK and e.applicable and e.score is not None:
        parts.append("not calibrated")
    return f"{e.check} " + ", ".join(parts) if parts else e.check


def decide(evidence: Mapping[str, Evidence], *, alpha: float = 1e-6,
           n_comparisons: int = 1) -> Verdict:
    """The verdict for one (candidate, reference) pair; see the module docstring."""
    items = list(evidence.values())
    decisive = [e for e in items if e.strength == DECISIVE]
    with_p = [e for e in decisive if e.applicable and e.p_value is not None]
    n = max(1, int(n_comparisons), len(with_p))
    level = alpha / n

    findings: list[str] = []
    near_misses: list[str] = []
    answered: list[Evidence] = []
    copies_ruled_out: list[Evidence] = []
    for e in decisive:
        if not e.applicable or e.indicates_derivation is None:
            continue
        if e.indicates_derivation is not True:
            (copies_ruled_out if e.check in COPY_ONLY else answered).append(e)
            continue
        answered.append(e)
        if e.p_value is None:
            findings.append(f"{e.check}: {e.summary or 'exact finding'}")
        elif e.p_value <= level:
            findings.append(f"{e.check} rejects independence (p={e.p_value:.2g} ≤ "
                            f"{alpha:g}/{n} = {level:.2g})")
        else:
            near_misses.append(f"{e.check} indicates derivation but p={e.p_value:.2g} does not "
                               f"survive the correction ({alpha:g}/{n} = {level:.2g})")

    weak = [e for e in items if e.strength == WEAK and e.applicable and e.score is not None]
    weak_hot = [e for e in weak if e.indicates_derivation is True]
    context_hot = [e for e in items if e.strength == CONTEXT and e.indicates_derivation is True]
    notes = []
    if context_hot:
        notes.append("context findings (not weight evidence): "
                     + "; ".join(e.summary or e.check for e in context_hot))

    if findings:
        return Verdict(DERIVED, "; ".join(findings + notes))

    if answered and not near_misses:
        reason = "decisive checks find no evidence of derivation (" + ", ".join(
            _num(e) for e in [*copies_ruled_out, *answered]) + ")"
        if weak_hot:
            reason += ("; weak curve statistics are high ("
                       + ", ".join(_num(e) for e in weak_hot) + ") but cannot decide")
        return Verdict(INDEPENDENT, "; ".join([reason, *notes]))

    parts: list[str] = list(near_misses)
    if weak_hot:
        parts.append(("only " if not near_misses else "")
                     + "weak curve statistics indicate derivation ("
                     + ", ".join(_num(e) for e in weak_hot) + ")")
    if not answered:
        na = [e for e in decisive if not e.applicable or e.indicates_derivation is None]
        parts.append("no decisive test applies that could detect a trained derivative" + (
            " (" + "; ".join(f"{e.check}: {e.reason or 'no information'}" for e in na) + ")"
            if na else ""))
        if copies_ruled_out:
            parts.append(", ".join(e.check for e in copies_ruled_out)
                         + " finds no copied tensors, which rules out copies only")
    if weak and not weak_hot:
        parts.append("weak statistics find nothing notable ("
                     + ", ".join(_num(e) for e in weak) + ")")
    return Verdict(INCONCLUSIVE, "; ".join(parts + notes))
