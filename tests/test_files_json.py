"""``loads_strict``: every JSON object of an untrusted file with a repeated key is refused,
naming the key; any other parses as ``json.loads`` would."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelprint.sources._files import loads_strict

_keys = st.lists(st.sampled_from(["a", "b", "c", "é", "0"]), max_size=6)


def _object(keys: list[str], first: str = "") -> str:
    return "{" + ", ".join([first] * bool(first) + [f"{json.dumps(k)}: {i}"
                                                    for i, k in enumerate(keys)]) + "}"


@given(outer=_keys, inner=_keys)
def test_repeated_keys_are_refused_at_any_depth(outer: list[str], inner: list[str]) -> None:
    text = _object(outer, first='"x": [' + _object(inner) + "]")
    keys_outer = ["x", *outer]
    first_repeat = next((k for i, k in enumerate(inner) if k in inner[:i]), None)
    if first_repeat is None:   # the inner object is parsed (and checked) first
        first_repeat = next((k for i, k in enumerate(keys_outer) if k in keys_outer[:i]),
                            None)
    if first_repeat is None:
        assert loads_strict(text) == json.loads(text)
    else:
        with pytest.raises(ValueError, match=f"duplicate key {first_repeat!r}"):
            loads_strict(text)
