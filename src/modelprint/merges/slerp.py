"""SLERP as mergekit defines it, and telling it from a linear merge.

mergekit's ``slerp`` interpolates two tensors ``v0`` (the base model) and ``v1`` along the
great circle of their *directions*: with ``cos(theta)`` the cosine of the flattened tensors,

    slerp(t) = sin((1 - t) theta) / sin(theta) * v0 + sin(t theta) / sin(theta) * v1,

applied to the unnormalised tensors, and falls back to ``(1 - t) v0 + t v1`` when
``|cos theta| > 0.9995``. So a SLERP merge is still an exact linear combination of its two
parents, but with coefficients summing to more than one (at ``theta = 90 deg``, ``t = 1/2``:
``2 sin 45 deg = 1.41``): a linear fit finds that excess, and the norm deficit a linear merge
of two dissimilar tensors has is absent. Per tensor both models have one parameter ``t``; the
one with the smaller residual over the sampled positions names the method. When the two
parents are nearly parallel the two curves coincide and the data cannot tell them apart.
"""

from __future__ import annotations

import numpy as np

#: mergekit's threshold on |cos theta| above which slerp is plain linear interpolation.
DOT_THRESHOLD = 0.9995

#: The t grid both one-parameter models are evaluated on (then refined parabolically).
T_GRID = np.linspace(0.0, 1.0, 401)


def coefficients(t: np.ndarray, cos_theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s0, s1) of slerp at ``t`` for tensors at angle ``arccos(cos_theta)`` (broadcast)."""
    c = np.clip(cos_theta, -1.0, 1.0)
    theta = np.arccos(c)
    sin = np.sin(theta)
    lerp = np.abs(c) > DOT_THRESHOLD
    safe = np.where(lerp, 1.0, sin)
    s0 = np.where(lerp, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    s1 = np.where(lerp, t, np.sin(t * theta) / safe)
    return s0, s1


def _rss_curves(g: np.ndarray, s0: np.ndarray, s1: np.ndarray) -> np.ndarray:
    """RSS of y ~ s0 x0 + s1 x1 under 3x3 Grams g (..., 3, 3) [x0, x1, y], on a grid (..., T)."""
    g00, g01, g11 = g[..., 0, 0, None], g[..., 0, 1, None], g[..., 1, 1, None]
    h0, h1, yy = g[..., 0, 2, None], g[..., 1, 2, None], g[..., 2, 2, None]
    return yy - 2 * (s0 * h0 + s1 * h1) + s0 * s0 * g00 + 2 * s0 * s1 * g01 + s1 * s1 * g11


def _argmin_refined(curve: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimiser on T_GRID, refined by a parabola through the three nearest grid points."""
    i = np.argmin(curve, axis=-1)
    j = np.clip(i, 1, curve.shape[-1] - 2)
    take = np.take_along_axis
    a, b, c = (take(curve, (j + d)[..., None], axis=-1)[..., 0] for d in (-1, 0, 1))
    denom = a - 2 * b + c
    shift = np.where(denom > 0, 0.5 * (a - c) / np.where(denom > 0, denom, 1.0), 0.0)
    step = T_GRID[1] - T_GRID[0]
    t = np.clip(T_GRID[j] + np.clip(shift, -1, 1) * step, 0.0, 1.0)
    t = np.where((i == 0) | (i == curve.shape[-1] - 1), T_GRID[i], t)
    return t, np.min(curve, axis=-1)


def fit_pair(grams: np.ndarray, cos_theta: np.ndarray) -> dict[str, np.ndarray]:
    """Per slot (and replicate), the best t and RSS of the linear and the slerp model.

    ``grams`` (..., 3, 3) over [v0, v1, y]; ``cos_theta`` the slot's cosine of v0 and v1
    (broadcast over replicates). Returns ``t_linear``, ``rss_linear``, ``t_slerp``,
    ``rss_slerp`` with the leading shape of ``grams``.
    """
    t = T_GRID
    lin = _rss_curves(grams, 1.0 - t, np.broadcast_to(t, (*grams.shape[:-2], t.size)))
    s0, s1 = coefficients(t, np.asarray(cos_theta)[..., None])
    sl = _rss_curves(grams, np.broadcast_to(s0, (*grams.shape[:-2], t.size)),
                     np.broadcast_to(s1, (*grams.shape[:-2], t.size)))
    t_lin, r_lin = _argmin_refined(lin)
    t_sl, r_sl = _argmin_refined(sl)
    return {"t_linear": t_lin, "rss_linear": r_lin, "t_slerp": t_sl, "rss_slerp": r_sl}
