"""The fingerprint schema's bulk checks accept exactly what its per-item loops accept.

``numbers`` and ``_positions`` check the common case (every item well-formed) with one pass
over the item types and one numpy pass over the values, and fall back to the per-item loop,
which names the culprit, otherwise. Here the two paths are compared on adversarial lists."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint.schema import _Check, _positions

ITEMS = st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True),
                  st.booleans(), st.none(), st.text(max_size=3), st.just(1e300))


def _slow_numbers(items: list[Any], nulls: bool, limit: float) -> bool:
    for v in items:
        if v is None and nulls:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        if abs(v) > limit:
            return False
    return True


def _accepts(fn: Any) -> bool:
    try:
        fn()
    except FingerprintFormatError:
        return False
    return True


@given(st.lists(ITEMS, max_size=12), st.booleans(), st.sampled_from([math.inf, 3.4e38, 2.0]))
def test_numbers_bulk_equals_the_loop(items: list[Any], nulls: bool, limit: float) -> None:
    c = _Check("x.fp.json")
    try:
        got = _accepts(lambda: c.numbers(items, "v", 100, nulls=nulls, limit=limit))
    except OverflowError:   # a huge int: float() of it in the loop, as before
        got = None
    if got is not None:
        assert got == _slow_numbers(items, nulls, limit)


@given(st.lists(st.one_of(st.integers(-3, 40), st.booleans(), st.integers(1 << 62, 1 << 64)),
                max_size=10), st.integers(1, 40))
def test_positions_bulk_equals_the_loop(items: list[Any], size: int) -> None:
    want = all(isinstance(v, int) and not isinstance(v, bool) for v in items) and all(
        0 <= v < size for v in items) and all(b > a for a, b in itertools.pairwise(items))
    assert _accepts(lambda: _positions(_Check("x.fp.json"), items, "rows", size)) == want


def test_the_loop_still_names_the_culprit() -> None:
    with pytest.raises(FingerprintFormatError, match=r"v\[2\]: must be a finite number"):
        _Check("x.fp.json").numbers([1.0, 2, True], "v", 10, nulls=False)
    with pytest.raises(FingerprintFormatError, match=r"rows\[1\]"):
        _positions(_Check("x.fp.json"), [3, 3], "rows", 10)
