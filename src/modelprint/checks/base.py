"""What a check is and what it returns.

A check compares two models and returns :class:`Evidence`. Checks see a :class:`ModelView`:
always the fingerprint, and the weights only when they are at hand (a ``*.fp.json`` reference
has none). Each check declares its ``strength``: only ``decisive`` checks can make the verdict
``derived``; ``weak`` ones (the seed's curve statistics) are shown but never decide;
``context`` ones (license files) inform the reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np

from modelprint.fingerprint.model import Fingerprint

DECISIVE, WEAK, CONTEXT = "decisive", "weak", "context"


class WeightAccess(Protocol):
    """Lazy access to a model's role tensors in HF layout (float32)."""

    def get(self, role: str, layer: int | None, expert: int | None = None, *,
            cols: np.ndarray | None = None) -> np.ndarray | None:
        """The whole tensor of one slot (only columns ``cols`` of a matrix when given), or
        None when the model has no such slot."""

    def rows(
        self, role: str, layer: int | None, index: np.ndarray, expert: int | None = None, *,
        cols: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Selected rows of one slot (e.g. embedding rows of chosen tokens), optionally only
        columns ``cols``."""


@dataclass
class ModelView:
    """A model as the checks see it."""

    fingerprint: Fingerprint
    weights: WeightAccess | None = None

    @property
    def name(self) -> str:
        return self.fingerprint.name


@dataclass
class Evidence:
    """One check's result for one pair. Serialised into the result JSON as ``checks.{name}``."""

    check: str
    strength: str
    applicable: bool
    score: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    #: True/False when the check applies; None when not applicable or no information.
    indicates_derivation: bool | None = None
    #: One sentence in plain words for the report and the terminal.
    summary: str = ""
    #: Why the check did not apply (or gave no information).
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def shallow_json(self) -> dict[str, Any]:
        """The fields as a dict that *shares* ``details`` with this evidence: for a caller
        that copies it anyway (``engine.results.json_safe`` rebuilds every container), which
        then skips ``asdict``'s deep copy (~10 ms of every compare's result, 12 checks)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def not_applicable(cls, check: str, strength: str, reason: str,
                       threshold: float | None = None) -> Evidence:
        return cls(check=check, strength=strength, applicable=False, threshold=threshold,
                   reason=reason, summary=f"not applicable: {reason}")


class Check(Protocol):
    """A check module exposes one object with this shape, registered in ``checks/__init__``."""

    name: ClassVar[str]
    strength: ClassVar[str]
    #: Options accepted in the audit YAML (``checks: {name: {...}}``) with their defaults;
    #: the spec loader rejects other keys and checks the types against these defaults.
    default_options: ClassVar[dict[str, Any]]
    #: What the check can and cannot show, one short paragraph (shown in the report).
    description: ClassVar[str]

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        """Compare candidate ``a`` with reference ``b``."""
