"""``merge_recipe``: a release gate on a merge's recipe ("at most 0.2 of model X").

Context strength: it never makes a verdict. It decomposes the candidate as a merge of the
``parents`` listed in its options (and ``base``; ``modelprint.merges``) and, for the audit
reference being checked, asserts the user's bounds on that parent's weight (``max_weight``,
``min_weight``, keyed by the parents' names) and, optionally, the merge ``method``. Its item
fails when an assertion does not hold, whatever the audit's ``expect``
(``details.assertion.holds``). With no parents listed it does not apply, so running every
check by default costs nothing.

Options (model references relative to the audit file, like ``candidate``)::

    merge_recipe:
      parents: {a: ./parent-a, x: ./parent-x}   # every parent the merge may have
      base: ./base                              # for task arithmetic / TIES / DARE
      max_weight: {x: 0.2}
      min_weight: {a: 0.5}
      method: ties                              # optional: linear, slerp, task_arithmetic, ...

The reference is matched to a parent by its weight files' sha256; a reference that is none
of the parents is "not applicable". The decomposition is computed once per candidate and
parent set and shared by every reference's item.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelprint.checks.base import CONTEXT, Evidence, ModelView
from modelprint.errors import InputError

_CACHE: dict[tuple[Any, ...], Any] = {}


def _same(a: ModelView, b: ModelView) -> bool:
    fa, fb = a.fingerprint.model.files, b.fingerprint.model.files
    return (bool(fa) and fa == fb) or a is b


class MergeRecipe:
    name: ClassVar[str] = "merge_recipe"
    strength: ClassVar[str] = CONTEXT
    default_options: ClassVar[dict[str, Any]] = {
        "parents": {}, "base": "", "max_weight": {}, "min_weight": {}, "method": "",
    }
    #: options holding model references, resolved relative to the audit file by the loader
    path_options: ClassVar[tuple[str, ...]] = ("parents", "base")
    description: ClassVar[str] = (
        "Decomposes the candidate as a merge of the listed parents (constrained least "
        "squares with bootstrap intervals, method from the residual's structure) and asserts "
        "the audit's bounds on this reference's weight and on the method. Context only: it "
        "never makes the verdict; its item fails when an asserted bound does not hold.")

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        parents: dict[str, str] = dict(options.get("parents") or {})
        if not parents:
            return Evidence.not_applicable(self.name, self.strength,
                                           "no merge recipe asserted (no parents listed)")
        for key in ("max_weight", "min_weight"):
            unknown = [k for k in (options.get(key) or {}) if k not in parents]
            if unknown:
                raise InputError("merge_recipe", f"{key} names {unknown[0]!r}, which is not "
                                                 f"one of the parents ({', '.join(parents)})")
        d, views = self._decomposition(a, parents, options.get("base") or "")
        mine = [name for name, v in zip(parents, views, strict=True) if _same(v, b)]
        if not mine:
            return Evidence.not_applicable(
                self.name, self.strength, "this reference is none of the recipe's parents")
        name = mine[0]
        pw = next(p for p in d.parents if p.name == name)
        failures = []
        hi = (options.get("max_weight") or {}).get(name)
        lo = (options.get("min_weight") or {}).get(name)
        w = pw.weight
        # a bound holds when the whole 95 % interval respects it: the gate does not pass on
        # a point estimate the data cannot tell from a violation
        if hi is not None and w.hi > float(hi):
            failures.append(f"weight {w} (95 % up to {w.hi:.3f}) exceeds max_weight {hi}")
        if lo is not None and w.lo < float(lo):
            failures.append(f"weight {w} (95 % from {w.lo:.3f}) is below min_weight {lo}")
        method = options.get("method") or ""
        if method and d.method != method:
            failures.append(f"method is {d.method}, not {method}")
        holds = not failures
        summary = (f"{name}: weight {w} [{w.lo:.3f}, {w.hi:.3f}], {d.method}; "
                   + ("recipe holds" if holds else "; ".join(failures)))
        return Evidence(
            check=self.name, strength=self.strength, applicable=True, score=w.value,
            threshold=None if hi is None else float(hi), p_value=None,
            indicates_derivation=None, summary=summary,
            details={"assertion": {"holds": holds, "failures": failures},
                     "parent": name, "decomposition": d.to_json()})

    def _decomposition(self, a: ModelView, parents: dict[str, str], base: str
                       ) -> tuple[Any, list[ModelView]]:
        from modelprint.merges import decompose
        from modelprint.models import load_model

        views = [load_model(ref, weights=True) for ref in parents.values()]
        bview = load_model(base, weights=True) if base else None
        key = (id(a), tuple(parents.items()), base)
        hit = _CACHE.get(key)
        if hit is None or hit[0] is not a:
            d = decompose(a, views, bview, names=list(parents), base_name=base or None)
            hit = (a, d)
            _CACHE[key] = hit
        return hit[1], views


CHECK = MergeRecipe()
