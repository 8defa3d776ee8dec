"""Curve maths shared by the seed's weak checks (attention std, bias std, norm gains).

A *curve* is one number per layer (e.g. the std of each layer's Q projection). The seed
(HonestAGI) compares two models' curves with Pearson's r. Everything here exists because that
number alone misleads (METHODS.md §2.2):

* depth curves are smooth trends, so neighbouring points are not independent: we report the
  lag-1 autocorrelation of each curve and the effective number of points
  ``n_eff ≈ L (1 − ρA ρB) / (1 + ρA ρB)`` (Bartlett's correction for two AR(1) series);
* two trending curves correlate whatever their origin, so we also correlate their first
  differences ("detrended" r) and their residuals from a quadratic fit in depth (a shared
  *curved* shape survives first differencing as a trend), leaving out the edge layers, whose
  jumps (layer 0, last layer) are a shared architectural effect rather than an inherited one;
* Spearman's rank correlation is reported next to Pearson's as a robustness view;
* a curve with no variation (Gemma 3: every q/k/v std is exactly 1/sqrt(640)) carries **no
  information** — every function here returns ``None`` for it instead of dividing by zero;
* curves of models with different depths are only compared over an explicit layer alignment
  (list of ``(layer_a, layer_b)``); we never interpolate (interpolating two monotone curves to
  a common length manufactures correlation).

All arithmetic is float64.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelprint._median import median
from modelprint._tails import average_ranks, t_sf
from modelprint.errors import InputError

#: A series is numerically constant when its spread is below this fraction of its magnitude.
#: Float64 statistics of large tensors agree to ~1e-15 relative, so 1e-9 separates "exactly
#: equal" from any real variation with a wide margin.
FLAT_RTOL = 1e-9
#: A depth curve carries no information when its coefficient of variation (sd / mean) is below
#: this. Measured: Gemma 3's q/k/v std curves, constant in the trained weights, vary by
#: CV 1.6e-4 to 3.4e-4 after Q4_K_M/Q5_0/Q8_0 quantisation (pure quantisation noise); the
#: curves of trained models vary by CV 0.07 (all-MiniLM-L6) to 0.6 (Gemma 3 norms). 3e-3 sits
#: ~10x above the noise and ~25x below real depth variation. (An untrained random init's curve
#: is sampling noise of CV ~ 1/sqrt(2 * entries): flat for tensors above ~55k entries.)
CURVE_FLAT_CV = 3e-3
#: Fewest paired points for which a correlation is reported at all.
MIN_POINTS = 3

Alignment = list[tuple[int, int]]
Vector = Sequence[float] | np.ndarray


class AlignmentError(InputError):
    """A ``layer_map`` that does not fit the two models (out-of-range or malformed entries)."""


# -- elementary statistics ---------------------------------------------------------------------


def as_array(values: Sequence[float | None]) -> np.ndarray:
    """Float64 array with NaN where a layer has no value."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def is_flat(x: np.ndarray, scale: float | None = None) -> bool:
    """True when ``x`` has (numerically) no variation relative to ``scale``.

    ``scale`` defaults to the largest magnitude in ``x``; pass the original curve's magnitude
    when ``x`` is a difference series, whose own magnitude is near zero by construction.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return True
    ref = float(np.max(np.abs(x))) if scale is None else abs(float(scale))
    if ref == 0.0 or not math.isfinite(ref):
        return True
    return float(np.ptp(x)) <= FLAT_RTOL * ref


def coefficient_of_variation(x: np.ndarray) -> float:
    """Population sd over mean magnitude (0 for an all-zero or one-point series)."""
    x = np.asarray(x, dtype=np.float64)
    level = float(np.mean(np.abs(x))) if x.size else 0.0
    return float(x.std()) / level if x.size > 1 and level > 0.0 else 0.0


def is_flat_curve(x: np.ndarray, flat_cv: float = CURVE_FLAT_CV) -> bool:
    """True when a depth curve varies too little to carry information (see CURVE_FLAT_CV)."""
    return is_flat(x) or coefficient_of_variation(x) <= flat_cv


def pearson(x: np.ndarray, y: np.ndarray, *, scale_x: float | None = None,
            scale_y: float | None = None) -> float | None:
    """Pearson's r in float64; None when either series is flat or too short."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < MIN_POINTS:
        return None
    if is_flat(x, scale_x) or is_flat(y, scale_y):
        return None
    xc = x - x.mean()
    yc = y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    if den == 0.0:
        return None
    return float(np.clip(float(xc @ yc) / den, -1.0, 1.0))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rho (Pearson of average ranks); None when either series is flat."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < MIN_POINTS or is_flat(x) or is_flat(y):
        return None
    return pearson(average_ranks(x), average_ranks(y))


def detrend(x: np.ndarray) -> np.ndarray:
    """First differences: removes any smooth trend shared by two curves."""
    return np.diff(np.asarray(x, dtype=np.float64))


def poly_residual(x: np.ndarray, degree: int = 2) -> np.ndarray:
    """Residuals of a least-squares polynomial in depth: removes smooth shared shapes
    (curvature survives first differencing as a trend of its own)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < degree + 4:
        return x[:0]
    t = np.linspace(-1.0, 1.0, x.size)
    coef = np.polynomial.polynomial.polyfit(t, x, degree)
    return x - np.polynomial.polynomial.polyval(t, coef)


def lag1_autocorr(x: np.ndarray) -> float | None:
    """Lag-1 autocorrelation of a series (None when flat or shorter than 3)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < MIN_POINTS or is_flat(x):
        return None
    xc = x - x.mean()
    den = float(xc @ xc)
    if den == 0.0:
        return None
    return float(np.clip(float(xc[:-1] @ xc[1:]) / den, -1.0, 1.0))


def effective_n(x: np.ndarray, y: np.ndarray) -> float | None:
    """Effective number of independent points of a correlation between two AR(1)-like curves.

    ``n_eff = L (1 − ρx ρy) / (1 + ρx ρy)``, clamped to ``[2, L]``: with L = 48 and ρ ≈ 0.9 it
    is about 5, which is why r ≈ 0.9 between smooth curves means little.
    """
    ra, rb = lag1_autocorr(x), lag1_autocorr(y)
    if ra is None or rb is None:
        return None
    n = float(np.asarray(x).size)
    prod = ra * rb
    if prod >= 1.0:
        return 2.0
    return float(min(n, max(2.0, n * (1.0 - prod) / (1.0 + prod))))


def pearson_p_approx(r: float | None, n_eff: float | None) -> float | None:
    """One-sided p of r under "no correlation" with ``n_eff − 2`` t-test degrees of freedom.

    Only approximate (the AR(1) correction is a rough model of the curves); reported as
    context, never used as a calibrated p-value.
    """
    if r is None or n_eff is None or n_eff <= 2.0:
        return None
    if r >= 1.0:
        return 0.0
    df = n_eff - 2.0
    t = r * math.sqrt(df / max(1e-300, 1.0 - r * r))
    return t_sf(t, df)


def zscore(x: np.ndarray, flat_cv: float = 0.0) -> list[float | None]:
    """Curve z-scored over depth (population sd) for plotting; a flat curve is only centred
    (so quantisation noise of a flat curve is not blown up into a pattern).

    NaN entries (layers without a value) stay ``None``.
    """
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    out: list[float | None] = [None] * x.size
    if not ok.any():
        return out
    v = x[ok]
    z = v - v.mean()
    if not is_flat_curve(v, flat_cv):
        sd = float(v.std())
        if sd > 0.0:
            z = z / sd
    for i, val in zip(np.flatnonzero(ok), z, strict=True):
        out[int(i)] = float(val)
    return out


# -- layer alignment -----------------------------------------------------------------------


def resolve_alignment(n_a: int, n_b: int, layer_map: Sequence[Any] | None,
                      where: str = "layer_map") -> tuple[Alignment | None, str]:
    """The layer pairs to compare and where they came from, or ``(None, reason)``.

    Equal depths pair layer i with layer i unless a ``layer_map`` is given; different depths
    need a ``layer_map`` (from the audit options or an automatic depth alignment) — no
    interpolation. A malformed map raises :class:`AlignmentError`.
    """
    if layer_map:
        pairs: Alignment = []
        for entry in layer_map:
            if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in entry)):
                raise AlignmentError(where, f"entry {entry!r} is not a [layer_a, layer_b] pair")
            la, lb = int(entry[0]), int(entry[1])
            if not (0 <= la < n_a and 0 <= lb < n_b):
                raise AlignmentError(
                    where, f"entry [{la}, {lb}] is out of range (the models have {n_a} and "
                    f"{n_b} layers)")
            pairs.append((la, lb))
        return pairs, "explicit layer_map"
    if n_a != n_b:
        return None, (f"different depths ({n_a} vs {n_b} layers) and no layer alignment given; "
                      "per-layer curves are not interpolated")
    return [(i, i) for i in range(n_a)], "identity (equal depth)"


@dataclass
class PairedCurves:
    """Two curves restricted to the aligned layers where both have a value."""

    x: np.ndarray
    y: np.ndarray
    layers: Alignment
    #: aligned pairs dropped because one side has no value there
    missing: Alignment = field(default_factory=list)


def pair_curves(ca: Sequence[float | None], cb: Sequence[float | None],
                alignment: Alignment) -> PairedCurves:
    """Select the aligned layers of two curves, dropping pairs with a missing value."""
    xa, xb = as_array(ca), as_array(cb)
    xs: list[float] = []
    ys: list[float] = []
    kept: Alignment = []
    missing: Alignment = []
    for la, lb in alignment:
        va = xa[la] if la < xa.size else np.nan
        vb = xb[lb] if lb < xb.size else np.nan
        if np.isfinite(va) and np.isfinite(vb):
            xs.append(float(va))
            ys.append(float(vb))
            kept.append((la, lb))
        else:
            missing.append((la, lb))
    return PairedCurves(np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64),
                        kept, missing)


# -- one curve pair, all views -------------------------------------------------------------


@dataclass
class CurveComparison:
    """Every view of one pair of curves that the reports show."""

    r: float | None                  # the seed's Pearson r
    r_detrended: float | None        # Pearson of first differences (edge layers trimmed)
    r_residual: float | None         # Pearson of residuals from a quadratic in depth (trimmed)
    spearman: float | None
    n: int                           # paired layers
    n_eff: float | None
    autocorr_a: float | None
    autocorr_b: float | None
    p_approx: float | None           # t-test with n_eff dof; context only
    flat_a: bool
    flat_b: bool

    @property
    def informative(self) -> bool:
        return self.r is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_curves(x: np.ndarray, y: np.ndarray, *, trim: int = 1, degree: int = 2,
                   flat_cv: float = CURVE_FLAT_CV) -> CurveComparison:
    """Compare two paired curves; ``trim`` edge layers at each end are left out of the
    detrended views (edge jumps are shared by architecture, not by inheritance). A curve
    flat to within ``flat_cv`` on either side gives no correlations at all."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    flat_a, flat_b = is_flat_curve(x, flat_cv), is_flat_curve(y, flat_cv)
    r = None if flat_a or flat_b else pearson(x, y)
    n_eff = effective_n(x, y) if r is not None else None
    t = max(0, int(trim))
    xi, yi = (x[t:x.size - t], y[t:y.size - t]) if x.size > 2 * t else (x[:0], y[:0])
    r_d = r_res = None
    if r is not None:
        r_d = pearson(detrend(xi), detrend(yi), scale_x=_mag(x), scale_y=_mag(y))
        r_res = pearson(poly_residual(xi, degree), poly_residual(yi, degree),
                        scale_x=_mag(x), scale_y=_mag(y))
    return CurveComparison(
        r=r, r_detrended=r_d, r_residual=r_res,
        spearman=spearman(x, y) if r is not None else None,
        n=int(x.size), n_eff=n_eff,
        autocorr_a=lag1_autocorr(x), autocorr_b=lag1_autocorr(y),
        p_approx=pearson_p_approx(r, n_eff), flat_a=flat_a, flat_b=flat_b,
    )


def _mag(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def centred_correlation(u: Vector, v: Vector) -> float | None:
    """Pearson correlation of two equal-length vectors (e.g. one layer's norm gains)."""
    a = np.asarray(u, dtype=np.float64)
    b = np.asarray(v, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        return None
    return pearson(a, b)


def uncentred_cosine(u: Vector, v: Vector) -> float | None:
    """Plain cosine. NOT evidence: all-positive vectors (norm gains) give ≈ 1 for unrelated
    models (Solar vs GLM: 0.99 with centred r ≈ 0.01); reported only to show that."""
    a = np.asarray(u, dtype=np.float64)
    b = np.asarray(v, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        return None
    den = math.sqrt(float(a @ a) * float(b @ b))
    return None if den == 0.0 else float(np.clip(float(a @ b) / den, -1.0, 1.0))


def mean_or_none(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def std_curve(fp: Any, role: str) -> list[float | None] | None:
    """Per-layer std curve of ``role``: the fingerprint's curve, else computed (unbiased, as
    ``torch.std``) from the stored vectors (biases and norms); None when the role is absent."""
    c = fp.curve(role, "std")
    if c is not None:
        return list(c)
    vecs = fp.vectors.get(role)
    if not vecs or all(v is None for v in vecs):
        return None
    out: list[float | None] = []
    for v in vecs:
        if v is None or len(v) < 2:
            out.append(None)
        else:
            out.append(float(np.std(np.asarray(v, dtype=np.float64), ddof=1)))
    return out


# -- per-layer vectors (biases, norm gains) --------------------------------------------------


def compare_vectors(fa: Any, fb: Any, role: str, alignment: Alignment) -> dict[str, Any]:
    """Per aligned layer: centred correlation (where lengths match), uncentred cosine (not
    evidence) and the RMS magnitude ratio candidate/reference of one vector role.

    Centred correlation is the meaningful number: the coordinates of the residual stream (norm
    gains) or of the heads (biases) are arbitrary for independently trained models, so their
    centred correlation sits near 0 — unlike the cosine, which the shared positive mean of
    gains pushes towards 1.
    """
    per_layer: list[dict[str, Any]] = []
    for la, lb in alignment:
        va, vb = fa.vector(role, la), fb.vector(role, lb)
        if va is None or vb is None:
            continue
        a = np.asarray(va, dtype=np.float64)
        b = np.asarray(vb, dtype=np.float64)
        rms_a = float(np.sqrt(np.mean(a * a))) if a.size else 0.0
        rms_b = float(np.sqrt(np.mean(b * b))) if b.size else 0.0
        same = a.shape == b.shape
        per_layer.append({
            "layers": [la, lb],
            "centred_r": centred_correlation(a, b) if same else None,
            "uncentred_cosine_not_evidence": uncentred_cosine(a, b) if same else None,
            "rms_a": rms_a, "rms_b": rms_b,
            "magnitude_ratio": rms_a / rms_b if rms_b > 0.0 else None,
            "shape_a": list(a.shape), "shape_b": list(b.shape),
        })
    ratios = [p["magnitude_ratio"] for p in per_layer
              if p["magnitude_ratio"] is not None and p["magnitude_ratio"] > 0.0]
    return {
        "layers_compared": len(per_layer),
        "shapes_match": bool(per_layer) and all(p["shape_a"] == p["shape_b"]
                                                for p in per_layer),
        "centred_r": mean_or_none([p["centred_r"] for p in per_layer]),
        "uncentred_cosine_not_evidence": mean_or_none(
            [p["uncentred_cosine_not_evidence"] for p in per_layer]),
        "magnitude_ratio": (float(np.exp(median(np.log(ratios)))) if ratios else None),
        "per_layer": per_layer,
    }
