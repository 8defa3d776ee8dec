"""Ground-truth labels for every pair of zoo models, from the ancestry in the recipes.

  derived      same root: ancestor/descendant (kind = the chain of derivations, e.g.
               ``sft``, ``sft+merge``) or siblings (kind ``sibling``);
  independent  different roots: ``same_recipe`` (same shape and training recipe, other seed
               and data order — the hard negatives), ``different_shape``, ``real`` (among the
               real models and their derivatives) or ``zoo_vs_real`` (zoo bases vs real
               models only).

Every independent pair also gets a ``split``: ``calibration`` when both roots are held out
for building null panels, ``evaluation`` when neither is, ``excluded`` when mixed (so no
model that calibrates a null is ever scored against that null).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any


def _root(name: str, models: dict[str, dict[str, Any]]) -> str:
    while models[name]["parents"]:
        name = models[name]["parents"][0]
    return name


def _chain(anc: str, desc: str, models: dict[str, dict[str, Any]]) -> list[str] | None:
    """Derivation kinds from ``anc`` down to ``desc``, or None if not an ancestor."""
    if anc == desc:
        return []
    for p in models[desc]["parents"]:
        got = _chain(anc, p, models)
        if got is not None:
            return [*got, models[desc]["kind"]]
    return None


def _shape(root: str, models: dict[str, dict[str, Any]]) -> str | None:
    return models[root]["recipe"].get("shape")


def make_pairs(models: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    roots = {n: _root(n, models) for n in models}
    role = {n: models[roots[n]].get("role", "evaluation") for n in models}
    pairs: list[dict[str, Any]] = []
    for a, b in combinations(list(models), 2):
        ra, rb = roots[a], roots[b]
        if ra == rb:
            down = _chain(a, b, models)
            up = _chain(b, a, models)
            if down is not None:
                kind, rel = "+".join(down), "ancestor"
            elif up is not None:
                kind, rel = "+".join(up), "descendant"
            else:
                kind, rel = "sibling", "sibling"
            pairs.append({"a": a, "b": b, "label": "derived", "kind": kind, "relation": rel,
                          "root": ra, "split": "evaluation" if role[a] == "evaluation"
                          else "calibration_family"})
            continue
        real_a, real_b = models[ra]["kind"] == "real", models[rb]["kind"] == "real"
        if real_a and real_b:
            kind = "real"
        elif real_a or real_b:
            zoo_side = b if real_a else a
            if models[zoo_side]["kind"] != "base":
                continue
            kind = "zoo_vs_real"
        elif _shape(ra, models) == _shape(rb, models):
            kind = "same_recipe"
        else:
            kind = "different_shape"
        split = role[a] if role[a] == role[b] else "excluded"
        pairs.append({"a": a, "b": b, "label": "independent", "kind": kind,
                      "relation": "independent", "roots": [ra, rb], "split": split})
    return pairs
