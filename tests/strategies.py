"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from hypothesis import strategies as st

#: Stored float dtypes a weight block can arrive in.
BLOCK_DTYPES = ("float16", "bfloat16", "float32", "float64")


@st.composite
def float_blocks(draw: st.DrawFn, max_size: int = 400) -> tuple[np.ndarray, list[int]]:
    """A float64 vector of weight-like values (varied scale and offset, sometimes constant)
    and cut points that split it into blocks of arbitrary sizes (empty blocks included)."""
    n = draw(st.integers(min_value=2, max_value=max_size))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    scale = draw(st.sampled_from([0.0, 1e-4, 0.02, 1.0, 300.0]))
    offset = draw(st.sampled_from([0.0, 1.0, -0.5, 1e3]))
    values = np.random.default_rng(seed).standard_normal(n) * scale + offset
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=n), max_size=6)))
    return values, cuts


@st.composite
def relayouts(draw: st.DrawFn, names: list[str]) -> dict[str, Any]:
    """A new on-disk layout of the same tensors: an order and a shard count (1 = one file)."""
    order = draw(st.permutations(names))
    shards = draw(st.integers(min_value=1, max_value=min(4, len(names))))
    return {"order": list(order), "shards": shards}


def fuzz_cases(kind: str) -> st.SearchStrategy[tuple[str, random.Random]]:
    """A hostile input of ``kind`` (see ``benchmarks/fuzz/inputs.py``): the generator draws
    every choice from a Hypothesis-controlled Random, so a failing input shrinks."""
    return st.tuples(st.just(kind), st.randoms(use_true_random=False))
