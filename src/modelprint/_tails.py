"""Distribution tails and ranks without importing scipy's statistics.

Why: importing ``scipy.stats`` takes 1.5-2 s on the 2-core machines here (it loads every
distribution), and even ``scipy.special`` costs 0.2 s (its array-API layer imports
``numpy.f2py``) -- a sixth of a whole warm ``compare`` of a small pair. The checks only need
the normal and Student-t upper tails and average ranks, which have short exact formulas:

* normal: ``P(Z >= z) = erfc(z / sqrt 2) / 2`` (``math.erfc``, accurate to the last bits far
  into the tail, where ``1 - Phi(z)`` would be 0);
* Student t with ``df`` degrees of freedom, ``t >= 0``: ``P(T >= t) = I_x(df/2, 1/2) / 2`` with
  ``x = df / (df + t^2)``, the regularised incomplete beta function, evaluated by its continued
  fraction (modified Lentz; Numerical Recipes 6.4 / DLMF 8.17.22) on the side of the symmetry
  ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where the fraction converges fast, with the prefactor
  ``x^a (1-x)^b / (a B(a, b))`` taken in logs (``math.lgamma``).

``tests/test_tails.py`` compares every function here with scipy.stats, to 1e-10 relative and
in the far tails.
"""

from __future__ import annotations

import math

import numpy as np

#: Continued-fraction tolerance and iteration cap (converges in O(sqrt(max(a, b))) steps).
_CF_EPS = 1e-16
_CF_MAX = 10_000
_TINY = 1e-300


def norm_sf(z: float) -> float:
    """P(Z >= z) for a standard normal (``scipy.stats.norm.sf``)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (without its prefactor), modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _CF_MAX + 1):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _CF_EPS:
            break
    return h


def _log_front(a: float, b: float, x: float) -> float:
    """ln(x^a (1-x)^b / B(a, b))."""
    return (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
            + a * math.log(x) + b * math.log1p(-x))


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularised incomplete beta function ``I_x(a, b)`` for ``a, b > 0``; ``y`` is
    ``1 - x`` when the caller has it without cancellation."""
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(_log_front(a, b, x)) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(_log_front(b, a, y)) * _beta_cf(b, a, y) / b


def t_sf(t: float, df: float) -> float:
    """P(T >= t) for Student's t with ``df`` degrees of freedom (``scipy.stats.t.sf``)."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if t == 0.0:
        return 0.5
    t2 = t * t
    # x = df / (df + t^2) and 1 - x, both without cancellation; |t| = inf has no tail
    tail = 0.0 if math.isinf(t2) else 0.5 * betainc(0.5 * df, 0.5, df / (df + t2),
                                                     t2 / (df + t2))
    return tail if t > 0 else 1.0 - tail


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
