"""Streaming moments: equal to torch.std / mean / norm on the float64 values, whatever the
dtype, block split or memory order; NaN/Inf refused with the file and tensor named."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings

from modelprint.errors import NonFiniteWeightsError
from modelprint.fingerprint.stats import Accumulator, Moments, moments_of, tensor_moments

from .strategies import float_blocks

DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32,
          "float64": np.float64}


def _torch_stats(x: np.ndarray) -> tuple[float, float, float]:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    return t.std().item(), t.mean().item(), torch.linalg.vector_norm(t).item()


def _close(a: float, b: float, rel: float = 1e-10, scale: float = 0.0) -> bool:
    return abs(a - b) <= rel * max(abs(b), scale) + 1e-300


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("layout", ["rows", "transposed", "strided"])
def test_moments_match_torch_on_float64(dtype: str, layout: str) -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((300, 257)) * 0.02 + 0.003).astype(DTYPES[dtype])
    if layout == "rows":
        blocks = [x[:100], x[100:101], x[101:]]
    elif layout == "transposed":  # Conv1D storage hands out transposed views
        blocks = [x[:150].T, x[150:].T]
    else:
        blocks = [x[:, ::2], x[:, 1::2]]
    m = tensor_moments(blocks)
    std, mean, l2 = _torch_stats(x.astype(np.float64))
    assert m.count == x.size
    assert _close(m.std, std) and _close(m.l2, l2)
    assert _close(m.mean, mean, scale=std)  # mean near 0: relative to the spread


def test_histogram_path_is_exact_for_every_16bit_value() -> None:
    """All 63,488 finite float16 patterns at once: extreme range, no rounding shortcut."""
    bits = np.arange(65536, dtype=np.uint16)
    x = bits.view(np.float16)
    x = x[np.isfinite(x)]
    m = tensor_moments([x])
    std, mean, l2 = _torch_stats(x.astype(np.float64))
    assert _close(m.std, std) and _close(m.l2, l2) and _close(m.mean, mean, scale=std)


@given(float_blocks())
@example((np.array([1000.00001891, 999.99994773, 999.99995869]), [1]))
@settings(max_examples=60, deadline=None)
def test_merge_is_split_invariant(data: tuple[np.ndarray, list[int]]) -> None:
    """Whole: the corrected two-pass std to 1e-10. Merged parts: Chan's update takes the
    difference of two float64 part means, each rounded to eps * |mean|, so the merged std
    carries an absolute error up to about eps * |mean| (Hypothesis found 3.2e-14 at mean 1000,
    std 3.8e-5: 8.5e-10 relative). That only matters where |mean| / std ~ 1e7 (a norm gain
    near a constant), and there the builder's accumulator subtracts a pivot first
    (``test_blocks_with_a_large_mean_and_a_tiny_spread_merge_exactly``)."""
    values, cuts = data
    parts = np.split(values, cuts)
    merged = Moments()
    for p in parts:
        merged = merged.merge(moments_of(p))
    whole = moments_of(values)
    std, mean, l2 = _torch_stats(values)
    assert merged.count == whole.count == values.size
    for m in (merged, whole):
        slack = 4 * np.finfo(np.float64).eps * abs(mean) if m is merged else 0.0
        assert abs(m.std - std) <= 1e-10 * std + slack + 1e-300
        assert _close(m.l2, l2)
        assert _close(m.mean, mean, scale=std + abs(mean))


@given(float_blocks())
@settings(max_examples=40, deadline=None)
def test_accumulator_any_dtype_mix(data: tuple[np.ndarray, list[int]]) -> None:
    """Blocks of different stored dtypes pool into the moments of all their values."""
    values, cuts = data
    parts = np.split(values, cuts)
    names = list(DTYPES)
    stored = [p.astype(DTYPES[names[i % 4]]) for i, p in enumerate(parts)]
    if not all(np.isfinite(s.astype(np.float64)).all() for s in stored):
        return  # 1e3 offsets overflow nothing, but keep the property about finite data
    acc = Accumulator()
    for s in stored:
        acc.add(s)
    m = acc.result()
    truth = np.concatenate([s.astype(np.float64) for s in stored])
    std, mean, l2 = _torch_stats(truth)
    assert m.count == truth.size
    assert _close(m.std, std) or (std == 0 and m.std <= 1e-12 * abs(mean))
    assert _close(m.l2, l2)
    assert _close(m.mean, mean, scale=std + abs(mean))


def test_single_value_has_no_std() -> None:
    m = tensor_moments([np.array([2.0], dtype=np.float32)])
    assert m.count == 1 and math.isnan(m.std) and m.mean == 2.0 and m.l2 == 2.0


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_file_and_tensor(dtype: str, bad: float) -> None:
    x = np.full((64, 64), 0.5, dtype=DTYPES[dtype])
    x[17, 3] = bad
    acc = Accumulator()
    acc.add(x[:32])
    acc.add(x[32:])
    acc.add(x[:1])
    with pytest.raises(NonFiniteWeightsError) as err:
        acc.result(Path("/models/m/model.safetensors"), "model.layers.0.self_attn.q_proj.weight")
    msg = str(err.value)
    assert "\n" not in msg
    assert "model.safetensors" in msg and "q_proj" in msg and "NaN/Inf" in msg


def test_float64_values_whose_sum_overflows_are_still_exact() -> None:
    x = np.array([1.5e308, 1.5e308, -1.5e308, 1.0], dtype=np.float64)
    m = tensor_moments([x])
    assert m.count == 4 and math.isfinite(m.mean)
    assert _close(m.mean, float(np.sum(x / 4)), rel=1e-12)


def test_shifted_moves_the_mean_only() -> None:
    x = np.random.default_rng(0).standard_normal(1000) * 0.1
    m = moments_of(x).shifted(1.0)
    std, mean, l2 = _torch_stats(x + 1.0)
    assert _close(m.std, std) and _close(m.mean, mean) and _close(m.l2, l2)


def test_blocks_with_a_large_mean_and_a_tiny_spread_merge_exactly() -> None:
    """|mean| / std = 1e7 (a norm gain stuck near a constant, stored partly in float32):
    merging block means directly would lose ~1e-10 relative; the pivot keeps it exact."""
    rng = np.random.default_rng(3)
    values = 1000.0 + rng.standard_normal(49) * 1e-4
    blocks = [values[:16].astype(np.float32), values[16:]]
    truth = [Fraction(float(v)) for b in blocks for v in b.astype(np.float64)]
    mean = sum(truth) / len(truth)
    exact = math.sqrt(float(sum((v - mean) ** 2 for v in truth) / (len(truth) - 1)))
    m = tensor_moments(blocks)
    assert abs(m.std - exact) <= 1e-13 * exact
    assert abs(m.mean - float(mean)) <= 1e-15 * float(mean)
