"""Distribution tails and ranks without importing ``scipy.stats``.

Why: importing ``scipy.stats`` takes 1.5-2 s on the 2-core machines here (it loads every
distribution), more than a whole warm audit of a small pair spends in its checks. The checks
only need the normal and Student-t upper tails and average ranks; ``scipy.special`` has the
same tail functions scipy.stats uses internally (``ndtr``, ``stdtr``) at a third of the import
cost. ``tests/test_tails.py`` compares every function here with scipy.stats.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special


def norm_sf(z: float) -> float:
    """P(Z >= z) for a standard normal (``scipy.stats.norm.sf``)."""
    return float(special.ndtr(-z))


def t_sf(t: float, df: float) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom (``scipy.stats.t.sf``)."""
    return float(special.stdtr(df, -t))


def t_logsf(t: float, df: float) -> float:
    """ln P(T >= t) (``scipy.stats.t.logsf``: the log of the tail, -inf where it underflows;
    callers floor it at what their test can attain)."""
    p = t_sf(t, df)
    return math.log(p) if p > 0.0 else -math.inf


def average_ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 1-based like ``scipy.stats.rankdata``."""
    v = np.asarray(v)
    order = np.argsort(v, kind="stable")
    sv = v[order]
    starts = np.r_[0, np.flatnonzero(sv[1:] != sv[:-1]) + 1]
    ends = np.r_[starts[1:], len(v)]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(len(v), dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks
