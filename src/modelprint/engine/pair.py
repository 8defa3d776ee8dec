"""One (candidate, reference) comparison: its checks, verdict, outcomes and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelprint.checks.base import Evidence
from modelprint.engine.outcomes import Outcome, check_outcome, decide, pair_outcome, verdict_outcome
from modelprint.engine.results import freeze, json_safe
from modelprint.engine.targets import Target
from modelprint.errors import InputError

if TYPE_CHECKING:
    from modelprint.engine.session import Engine


@dataclass
class Pair:
    """One (candidate, reference) comparison inside an audit."""

    engine: Engine
    candidate: Target
    reference: Target
    checks: dict[str, dict[str, Any]]
    expect: str | None
    alpha: float
    n_tests: int
    audit: str | None = None
    _timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def alpha_per_test(self) -> float:
        return self.alpha / self.n_tests

    def evidence(self, check: str) -> Evidence:
        ev, seconds = self.engine.evidence(self.candidate, self.reference, check,
                                           self.checks[check])
        self._timings[check] = seconds
        return ev

    def all_evidence(self) -> dict[str, Evidence]:
        """Every selected check's evidence, computed side by side where not yet computed."""
        out: dict[str, Evidence] = {}
        for name, (ev, seconds) in self.engine.evidence_many(
                self.candidate, self.reference, self.checks).items():
            self._timings[name] = seconds
            out[name] = ev
        return out

    def verdict(self) -> tuple[str, str]:
        """``(verdict, reason)`` over every selected check (computing those not yet run)."""
        key = (self.candidate.key(), self.reference.key(), freeze(self.checks),
               self.alpha, self.n_tests)
        hit = self.engine._verdicts.get(key)
        if hit is None:
            hit = decide(self.all_evidence(), self.alpha, self.n_tests)
            self.engine._verdicts[key] = hit
        return hit

    def check_outcome(self, check: str) -> Outcome:
        return check_outcome(self.evidence(check), self.expect)

    def verdict_outcome(self) -> Outcome:
        verdict, reason = self.verdict()
        return verdict_outcome(verdict, reason, self.expect)

    # -- JSON ---------------------------------------------------------------------------
    def header_json(self) -> dict[str, Any]:
        """What identifies the pair, without running any check."""
        return {
            "audit": self.audit,
            "candidate": self._model_json(self.candidate),
            "reference": {**self._model_json(self.reference), "name": self.reference.display},
            "expect": self.expect,
            "alpha": self.alpha,
            "tests": self.n_tests,
            "alpha_per_test": self.alpha_per_test,
        }

    def check_json(self, check: str) -> dict[str, Any]:
        ev = self.evidence(check)
        impl = self.engine.registry[check]
        return json_safe({**ev.shallow_json(), "outcome": check_outcome(ev, self.expect).status,
                          "description": getattr(impl, "description", ""),
                          "options": self.checks[check],
                          "seconds": round(self._timings.get(check, 0.0), 4)})

    def to_json(self) -> dict[str, Any]:
        """The full result of the pair (runs every selected check)."""
        verdict, reason = self.verdict()
        checks = {name: self.check_json(name) for name in self.checks}
        out = self.header_json()
        out.update(verdict=verdict, verdict_reason=reason, checks=checks)
        out["outcome"] = pair_outcome(out) if self.expect else None
        return out

    def _model_json(self, target: Target) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": target.reference}
        try:
            fp = self.engine.model(target).fingerprint
        except InputError as exc:
            out["error"] = str(exc)
            return out
        out.update(kind=fp.model.kind, revision=fp.model.revision, files=dict(fp.model.files),
                   architecture=fp.architecture.to_json())
        if fp.model.reference != target.reference:
            out["resolved"] = fp.model.reference
        return json_safe(out)
