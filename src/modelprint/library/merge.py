"""Is the candidate a merge of several library models, and in what proportions?

``identify`` finds every library model the candidate is related to; a merge is related to
each of its parents, and "derived" alone does not say what it owes to whom. So when two or
more related library models have the candidate's shape, the candidate is decomposed
(:func:`modelprint.merges.decompose`, the engine behind ``modelprint decompose``) with all of
them offered as parents -- from their fingerprint sketches, which is all a library holds.

It is called a merge only when the fit says so on both counts:

* two or more entries are parents in the decomposition's own sense (weight at least
  :data:`~modelprint.merges.MIN_WEIGHT` and its 95 % bootstrap interval clear of 0); and
* the mixture accounts for the candidate: what it leaves unexplained is below
  :data:`~modelprint.merges.decompose.RESIDUAL_NOTE` of what the nearest single entry
  leaves. This is what tells a merge from its relatives' common ancestor: a base model is
  also close to the average of its fine-tunes, but never up to the fine-tunes' own
  differences, while a merge is an exact mixture up to sketch rounding. A merge trained
  much further afterwards therefore is not named a merge; its parents are still listed as
  related models.

Entries shown to derive from the candidate (relation ``child``) are not offered: a model is
not a merge of its own descendants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelprint.checks.base import ModelView
from modelprint.errors import InputError
from modelprint.library.direction import CHILD


@dataclass
class MergeFinding:
    """The decomposition of the candidate over its related library models."""

    offered: list[str]
    is_merge: bool
    summary: str
    unexplained: float
    decomposition: Any  # modelprint.merges.Decomposition

    @property
    def parents(self) -> list[Any]:
        """The parents with their weights (``ParentWeight``), heaviest first; empty unless
        the candidate is a merge."""
        if not self.is_merge:
            return []
        return sorted((p for p in self.decomposition.parents if p.is_parent),
                      key=lambda p: -p.weight.value)

    def weight(self, name: str) -> Any:
        """The mixture weight (``Estimate``) of library model ``name`` when it is a parent of
        the merge, else None."""
        return next((p.weight for p in self.parents if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        d = self.decomposition
        return {"is_merge": self.is_merge, "summary": self.summary, "offered": self.offered,
                "unexplained_vs_nearest_entry": self.unexplained, "method": d.method,
                "source": d.source,
                "parents": [{"name": p.name, "weight": p.weight.to_json(),
                             "is_parent": p.is_parent and self.is_merge}
                            for p in d.parents],
                "explained": d.explained.to_json(), "seconds": round(d.seconds, 4)}


def _shape(view: ModelView) -> tuple[Any, ...]:
    a = view.fingerprint.architecture
    return (a.num_layers, a.hidden_size, a.intermediate_size, a.num_experts)


def find_merge(candidate: ModelView, matches: Sequence[Any],
               view_of: Callable[[str], ModelView], candidate_name: str) -> MergeFinding | None:
    """Decompose ``candidate`` over its related, same-shape library ``matches`` (``Match``
    objects; ``view_of(name)`` loads an entry). None when fewer than two are offered or no
    tensor slot is shared."""
    from modelprint.merges.decompose import RESIDUAL_NOTE, decompose

    shape = _shape(candidate)
    offered, views = [], []
    for m in matches:
        if not m.related or m.relation == CHILD:
            continue
        view = view_of(m.name)
        if _shape(view) == shape:
            offered.append(m.name)
            views.append(view)
    if len(offered) < 2:
        return None
    try:
        d = decompose(candidate, views, names=offered, candidate_name=candidate_name,
                      use_weights=False)
    except InputError:
        return None
    unexplained = float(d.evidence.get("unexplained_vs_nearest_parent", 1.0))
    found = [p for p in d.parents if p.is_parent]
    is_merge = len(found) >= 2 and unexplained < RESIDUAL_NOTE
    summary = ""
    if is_merge:
        # the sentence of ``modelprint decompose``, without its list of the offered
        # entries that are not parents (siblings, re-quantised copies of a parent, ...)
        summary = "; ".join(part for part in d.summary.split("; ")
                            if not part.endswith(")") or " is not a parent " not in part)
    return MergeFinding(offered, is_merge, summary, unexplained, d)
