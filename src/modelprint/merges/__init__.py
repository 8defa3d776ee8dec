"""Merged models: which parents, in what proportions, layer by layer, by which method.

``decompose(candidate, parents, base=None) -> Decomposition`` is the one entry point
(``modelprint decompose``, the ``merge_recipe`` check and ``identify`` call it). Modules:
``sample`` (aligned positions), ``collect`` (one pass: per-row Grams, entry patterns),
``fit`` (constrained least squares), ``bootstrap`` (row resampling), ``slerp`` and ``sparse``
(what those methods leave in the residual), ``method`` (naming the method), ``mergekit``
(the nearest recipe), ``describe`` (the sentence), ``report`` (text and HTML).
"""

from __future__ import annotations

from modelprint.merges.decompose import MIN_WEIGHT, Decomposition, ParentWeight, decompose

__all__ = ["MIN_WEIGHT", "Decomposition", "ParentWeight", "decompose"]
