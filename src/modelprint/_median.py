"""The median of float64 values, as ``np.median`` gives it, without importing ``numpy.ma``.

Why: ``np.median`` and ``np.percentile`` import ``numpy.ma`` on first use (~10 ms), which
every warm ``compare`` paid for the one-line medians of its check summaries. Same result as
``np.median(np.asarray(values, dtype=float64))`` over all values (flattened): the middle
value, or the mean ``(a + b) / 2`` of the two middle values; NaN when any value is NaN or
there are none (numpy warns there; a summary line does not need the warning).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def median(values: Any) -> float:
    a = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = a.size
    if n == 0 or math.isnan(a[-1]):      # np.sort puts NaN last
        return math.nan
    mid = n // 2
    if n % 2:
        return float(a[mid])
    with np.errstate(over="ignore"):     # two values near the float64 limit: inf, as numpy
        return float((a[mid - 1] + a[mid]) / 2)
