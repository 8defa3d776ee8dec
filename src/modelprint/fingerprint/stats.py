"""Exact float64 moments of weight tensors, streamed block by block.

The seed statistic is ``torch.std`` (unbiased) of a whole weight matrix in float64; ports that
take it in bf16 get three-digit values, and loading a multi-GB tensor as float64 is not an
option. So statistics are accumulated here from blocks of the *stored* values:

* 16-bit floats (float16, bfloat16) and 8-bit floats have at most 65,536 distinct values. We
  count the raw bit patterns with ``np.bincount`` in cache-sized chunks (the int64 index copy
  ``bincount`` makes stays in L2) and take the moments in float64 from the distinct values and
  their counts. That is exact up to the final float64 sums and several times faster than
  converting every element to float64 (about 1.3 GB/s of stored weights on one core here).
* float32/float64 blocks (and dequantised GGUF blocks) are converted to float64 in chunks of
  ``FLOAT_CHUNK`` elements; each chunk contributes a two-pass (mean, M2) pair.

Every value is first shifted by a *pivot*, the first finite value the accumulator sees: for
data whose mean is large against its spread (|mean| / std = 1e7 happens in norm gains near a
constant), the merge below would otherwise lose ~eps * |mean| / std relative precision in the
differences of block means. ``x - pivot`` is exact for values within a factor of two of the
pivot (Sterbenz), so the shifted moments keep full precision and the pivot is added back to the
mean at the end.

Partial results are merged with Chan, Golub and LeVeque's pairwise update, which is what
makes a layer's experts, a model's shards and a tensor's blocks combine into the same numbers
whatever the order, to ~1e-15 relative. NaN and Inf are never averaged away: they raise
:class:`NonFiniteWeightsError` naming the file and the tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np

from modelprint.errors import NonFiniteWeightsError

#: Elements per ``bincount`` call: 512k uint16 -> a 4 MB int64 index copy, measured fastest
#: here (smaller chunks pay the 65,536-bin add, larger ones fall out of cache).
HIST_CHUNK = 1 << 19
#: Elements per float64 conversion chunk (512 kB of float64, stays in L2).
FLOAT_CHUNK = 1 << 16

_HIST_DTYPES: dict[np.dtype, type[np.unsignedinteger]] = {
    np.dtype(np.float16): np.uint16,
    np.dtype(ml_dtypes.bfloat16): np.uint16,
    np.dtype(ml_dtypes.float8_e4m3fn): np.uint8,
    np.dtype(ml_dtypes.float8_e5m2): np.uint8,
}


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations (M2) of a set of float64 values."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s pairwise combination: exact in exact arithmetic, stable in float64."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / n)
        return Moments(n, mean, m2)

    def shifted(self, offset: float) -> Moments:
        """Moments of ``x + offset`` (Gemma norms are applied as ``1 + w``)."""
        return Moments(self.count, self.mean + offset, self.m2) if offset else self

    @property
    def std(self) -> float:
        """Unbiased (ddof=1) standard deviation, as ``torch.std``; NaN below two values."""
        if self.count < 2:
            return math.nan
        return math.sqrt(max(self.m2, 0.0) / (self.count - 1))

    @property
    def l2(self) -> float:
        """Frobenius norm: sum x^2 = M2 + n mean^2 (two non-negative terms, no cancellation)."""
        return math.sqrt(max(self.m2, 0.0) + self.count * self.mean * self.mean)


def moments_of(values: np.ndarray) -> Moments:
    """Two-pass moments of an in-memory array (callers keep it small)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return Moments()
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(x.sum())
    if not math.isfinite(total) and np.isfinite(x).all():
        # finite float64 values near the top of the range: work on x / max|x|
        scale = float(np.abs(x).max())
        m = moments_of(x / scale)
        return Moments(m.count, m.mean * scale, m.m2 * scale * scale)
    mean = total / x.size
    d = x - mean
    # the residual sum corrects the mean to the last bit (Björck's corrected two-pass)
    corr = float(d.sum())
    mean_c = mean + corr / x.size
    return Moments(int(x.size), mean_c, _sumsq(d) - corr * corr / x.size)


def _sumsq(x: np.ndarray) -> float:
    """sum(x*x) without BLAS: OpenBLAS's ``ddot`` wakes worker threads that then spin and
    steal the CPU from everything else in the process (measured 20x slower under load)."""
    return float(np.einsum("i,i->", x, x))


def _value_table(dtype: np.dtype, ubits: type[np.unsignedinteger]) -> np.ndarray:
    n = 1 << (8 * np.dtype(ubits).itemsize)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN patterns warn in the cast
        return np.arange(n, dtype=ubits).view(dtype).astype(np.float64)


_TABLES: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}


def _table(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The float64 value of every bit pattern of ``dtype`` and the patterns that are NaN or
    Inf (read-only, made once per dtype: every tensor's :meth:`Accumulator.result` needs them,
    and finding the non-finite ones again was ~0.15 ms of each of SmolLM2's 272 tensors)."""
    t = _TABLES.get(dtype)
    if t is None:
        values = _value_table(dtype, _HIST_DTYPES[dtype])
        bad = np.flatnonzero(~np.isfinite(values))
        values.flags.writeable = bad.flags.writeable = False
        t = _TABLES[dtype] = (values, bad)
    return t


def _flat(block: np.ndarray) -> np.ndarray:
    """A 1-D view in memory order (no copy for C- or F-ordered blocks; order is irrelevant
    to moments)."""
    return np.ravel(block, order="K")


class Accumulator:
    """Moments of every value fed to :meth:`add`, in any float dtype, in constant memory."""

    def __init__(self) -> None:
        self._hists: dict[np.dtype, np.ndarray] = {}
        self._moments = Moments()
        self._nonfinite = 0
        self._buf: np.ndarray | None = None
        self._pivot: float | None = None

    def _set_pivot(self, flat: np.ndarray) -> None:
        """The first finite value of the first block that has one (see the module docstring)."""
        with np.errstate(invalid="ignore", over="ignore"):   # a signalling NaN warns here
            x = flat[:FLOAT_CHUNK].astype(np.float64)
            ok = np.flatnonzero(np.isfinite(x))
        if ok.size:
            # a pivot this small can never turn a finite value into an infinite difference
            self._pivot = float(x[ok[0]]) if abs(x[ok[0]]) < 1e150 else 0.0

    def add(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.size == 0:
            return
        ubits = _HIST_DTYPES.get(block.dtype)
        if ubits is None and block.dtype.kind != "f":
            raise TypeError(f"not a floating-point block: {block.dtype}")
        if self._pivot is None:
            self._set_pivot(_flat(block))
        if ubits is not None:
            self._add_hist(_flat(block).view(ubits), block.dtype)
        else:
            self._add_float(_flat(block))

    def _add_hist(self, bits: np.ndarray, dtype: np.dtype) -> None:
        hist = self._hists.get(dtype)
        if hist is None:
            hist = self._hists[dtype] = np.zeros(1 << (8 * bits.itemsize), dtype=np.int64)
        for i in range(0, bits.size, HIST_CHUNK):
            counts = np.bincount(bits[i:i + HIST_CHUNK])
            hist[: counts.size] += counts

    def _add_float(self, x: np.ndarray) -> None:
        m = self._moments
        buf = self._buf
        if buf is None:
            buf = self._buf = np.empty(min(FLOAT_CHUNK, x.size), dtype=np.float64)
        for i in range(0, x.size, FLOAT_CHUNK):
            part = x[i:i + FLOAT_CHUNK]
            if part.size > buf.size:
                buf = self._buf = np.empty(FLOAT_CHUNK, dtype=np.float64)
            c = buf[: part.size]
            # float64 conversion into a reused, cache-resident buffer; NaN/Inf are counted
            # below and reported as one error, not as numpy warnings
            with np.errstate(over="ignore", invalid="ignore"):
                np.copyto(c, part)
                if self._pivot:
                    c -= self._pivot
                s = float(c.sum())
            if not math.isfinite(s):
                bad = int(np.count_nonzero(~np.isfinite(c)))
                if bad:
                    self._nonfinite += bad
                    continue
                # finite values whose sum overflowed (float64 only): no pivot there
                np.copyto(c, part)
                whole = moments_of(c)
                m = m.merge(whole.shifted(-self._pivot) if self._pivot else whole)
                continue
            mean = s / c.size
            c -= mean
            m = m.merge(Moments(int(c.size), mean, _sumsq(c)))
        self._moments = m

    def result(self, where: str | Path | None = None, tensor: str = "") -> Moments:
        """The moments so far. ``where``/``tensor`` name the culprit if a NaN/Inf was seen."""
        m = self._moments
        for dtype, hist in self._hists.items():
            table, bad = _table(dtype)
            nonfinite = int(hist[bad].sum())
            if nonfinite:
                self._nonfinite += nonfinite
                hist[bad] = 0
            # the same indices as flatnonzero(hist), 5x faster (numpy's nonzero of int64 is
            # ~120 us per 65,536 bins, of a boolean mask ~20 us)
            nz = np.flatnonzero(hist != 0)
            if nz.size == 0:
                continue
            counts = hist[nz]
            c = counts.astype(np.float64)
            v = table[nz] - (self._pivot or 0.0)
            n = int(counts.sum())
            mean = float((c * v).sum() / n)
            d = v - mean
            m = m.merge(Moments(n, mean, float((c * d * d).sum())))
        if self._pivot:
            m = m.shifted(self._pivot)
        if self._nonfinite:
            raise NonFiniteWeightsError(
                where, f"tensor {tensor!r} holds {self._nonfinite} NaN/Inf value(s); "
                "statistics over them would be meaningless")
        return m


def tensor_moments(blocks: Iterable[np.ndarray], where: str | Path | None = None,
                   tensor: str = "") -> Moments:
    """Moments of an iterable of blocks (convenience for tests and benchmarks)."""
    acc = Accumulator()
    for b in blocks:
        acc.add(b)
    return acc.result(where, tensor)
