"""The lineage benchmark's p-value validity test counts each independent lineage pair once."""

from __future__ import annotations

from typing import Any

import numpy as np
from benchmarks.lineage import metrics


def _rec(a: str, b: str, roots: tuple[str, str], p: float) -> dict[str, Any]:
    return {"a": a, "b": b, "label": "independent", "kind": "same_recipe",
            "roots": list(roots), "checks": {"c": {"p_value": p, "applicable": True}}}


def _zoo(rng: np.random.Generator) -> list[dict[str, Any]]:
    """20 lineage pairs with uniform p-values; one of them (p = 0.01) is repeated by 30
    derivatives of its first root, as the zoo's derivatives repeat their base's p-value."""
    recs = [_rec(f"r{i}", f"s{i}", (f"r{i}", f"s{i}"), float(rng.uniform()))
            for i in range(19)]
    recs.append(_rec("r19", "s19", ("r19", "s19"), 0.01))
    recs += [_rec(f"r19.d{k}", "s19", ("r19", "s19"), 0.01 * (1 + 1e-3 * k))
             for k in range(30)]
    return recs


def test_one_pair_per_lineage_pair_and_the_roots_represent_it() -> None:
    recs = _zoo(np.random.default_rng(0))
    recs.insert(0, recs.pop())  # a derivative is seen before its base pair
    distinct = metrics.lineage_distinct(recs)
    assert len(distinct) == 20
    rep = next(r for r in distinct if set(r["roots"]) == {"r19", "s19"})
    assert (rep["a"], rep["b"]) == ("r19", "s19")


def test_repeated_derivatives_do_not_make_a_valid_test_look_invalid() -> None:
    recs = _zoo(np.random.default_rng(1))
    all_pairs = metrics.p_value_table(recs, "c")
    per_lineage = metrics.p_value_table(metrics.lineage_distinct(recs), "c")
    assert all_pairs is not None and per_lineage is not None
    assert all_pairs["validity_p"] < 1e-6  # 31 of 50 p-values at ~0.01: "invalid"
    assert per_lineage["n"] == 20 and per_lineage["validity_p"] > 0.05


def test_derived_pairs_and_pairs_without_roots_are_left_out() -> None:
    recs = [_rec("a", "b", ("a", "b"), 0.5), {**_rec("x", "y", ("x", "y"), 0.5),
                                               "label": "derived"},
            {**_rec("u", "v", ("u", "v"), 0.5), "roots": None}]
    assert [(r["a"], r["b"]) for r in metrics.lineage_distinct(recs)] == [("a", "b")]
