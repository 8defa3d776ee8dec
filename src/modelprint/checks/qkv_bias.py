"""qkv_bias — the seed's bias comparison, plus the bias vectors themselves.

The seed (HonestAGI README "Update") took per layer the std of each of the q/k/v bias vectors,
normalised the curves over depth and compared their shapes, as for attention_std. That
treatment inherits every weakness of the std curves (METHODS.md §2.2) and, worse, discards the
absolute bias scale — exactly where independently trained models differ (analysts on Pangu vs
Qwen2.5: "essential differences in the absolute-value distribution of the biases").

So, besides the seed's curve score (``score``: mean over q/k/v of the Pearson r of the bias-std
curves), the check compares the vectors directly where shapes allow:
  * ``centred_r`` — per aligned layer the Pearson (centred) correlation of the two bias
    vectors, averaged over layers and q/k/v. A fine-tune keeps its parent's biases (≈ 1).
    Caveat: within a head, RoPE gives coordinates a fixed meaning, so independent models with
    the same head layout need not sit at exactly 0; treat it as weak too.
  * ``magnitude_ratio`` — median over layers of RMS(candidate) / RMS(reference).

Decision rule: the weak curve rule of :mod:`.attention_std` (score ≥ ``threshold``, detrended r
≥ ``detrended_threshold``, empirical p ≤ ``alpha`` when a null exists) AND, when the vectors can
be compared, ``centred_r ≥ vector_threshold`` (default 0.5) AND the magnitude ratio within a
factor ``max_magnitude_ratio`` (default 2). The extra conditions can only remove indications,
never add them: a shared curve shape with unrelated vectors or a different bias scale is the
independent-model pattern. Not applicable (with the reason) when either side has no q/k/v
biases (Llama, Gemma, Qwen3 ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from modelprint.calibration.nulls import empirical_p, null_scores
from modelprint.checks import attention_std as seed
from modelprint.checks import curves as cv
from modelprint.checks.base import WEAK, Evidence, ModelView
from modelprint.roles import QKV_BIASES


def vector_seed_evidence(check: str, roles: Sequence[str], what: str, a: ModelView,
                         b: ModelView, opts: dict[str, Any], *,
                         use_magnitude: bool) -> Evidence:
    """Seed curve treatment + per-layer vector comparison for biases or norm gains."""
    thr = float(opts["threshold"])
    fa, fb = a.fingerprint, b.fingerprint
    lacks = [side for side, fp in (("candidate", fa), ("reference", fb))
             if not any(cv.std_curve(fp, r) is not None for r in roles)]
    if lacks:
        who = "neither model has" if len(lacks) == 2 else f"the {lacks[0]} has no"
        return Evidence.not_applicable(check, WEAK, f"{who} {what}", threshold=thr)
    alignment, source = seed.resolve(fa, fb, opts)
    if alignment is None:
        return Evidence.not_applicable(check, WEAK, source, threshold=thr)
    res = seed.evaluate_curves(fa, fb, roles, alignment, source, trim=int(opts["trim_edges"]),
                               flat_cv=float(opts["flat_tolerance"]))
    if not res.comparisons:
        return Evidence.not_applicable(
            check, WEAK, f"no {what} in common ({seed.describe_absent(res)})", threshold=thr)
    details = res.details()
    vectors = {r: cv.compare_vectors(fa, fb, r, alignment) for r in res.comparisons}
    details["vectors"] = vectors
    vr = cv.mean_or_none([v["centred_r"] for v in vectors.values()])
    ratios = [v["magnitude_ratio"] for v in vectors.values() if v["magnitude_ratio"]]
    ratio = float(sum(ratios) / len(ratios)) if ratios else None
    details["vector_centred_r"] = vr
    details["magnitude_ratio"] = ratio
    details["uncentred_cosine_not_evidence"] = cv.mean_or_none(
        [v["uncentred_cosine_not_evidence"] for v in vectors.values()])
    vec_txt = ("vectors: " + ("centred r n/a (shapes differ or flat)" if vr is None
                              else f"centred r = {vr:.3f}")
               + ("" if ratio is None else f", magnitude ratio {ratio:.3g}"))
    score = res.score
    if score is None:
        why = f"every {what} std curve is flat or too short ({seed.describe_roles(res)})"
        details["null"] = {"scores": [], "source": None, "calibrated": False}
        ev = seed.no_information(check, thr, why, details)
        ev.summary += f"; {vec_txt}"
        return ev
    dec = seed.weak_decision(check, res, opts)
    details["null"] = dec.null
    dec.add(_vector_failures(check, vr, ratio, opts, details, use_magnitude=use_magnitude))
    indicates = dec.indicates
    rule = dec.explanation
    details["rule"] = rule
    summary = (f"mean {what} std-curve r = {score:.3f} {seed.describe_roles(res)}; detrended r "
               f"= {seed.fmt(res.r_detrended)}, residual r = {seed.fmt(res.r_residual)}; "
               f"{vec_txt}; {rule}")
    return Evidence(check=check, strength=WEAK, applicable=True, score=score, threshold=thr,
                    p_value=dec.p_value, indicates_derivation=indicates, summary=summary,
                    details=details)


def _vector_failures(check: str, vr: float | None, ratio: float | None, opts: dict[str, Any],
                     details: dict[str, Any], *, use_magnitude: bool) -> list[str]:
    failed: list[str] = []
    vthr = float(opts["vector_threshold"])
    if vr is not None:
        if vr < vthr:
            failed.append(f"vector centred r {vr:.3f} < {vthr:g}")
        panel = null_scores(check, "vector_centred_r")
        if panel is not None:
            p = empirical_p(vr, panel)
            details["null"]["vector_centred_r"] = {**panel.to_json(), "p_value": p}
            limit = max(float(opts["alpha"]), panel.floor)
            if p > limit:
                failed.append(f"vector centred r p {p:.3g} > {limit:.3g}")
    if use_magnitude and ratio is not None:
        mx = float(opts["max_magnitude_ratio"])
        if not (1.0 / mx <= ratio <= mx):
            failed.append(f"bias magnitudes differ by {max(ratio, 1 / ratio):.3g}x (> {mx:g}x)")
    return failed


class QkvBias:
    name: ClassVar[str] = "qkv_bias"
    strength: ClassVar[str] = WEAK
    default_options: ClassVar[dict[str, Any]] = {
        **seed.SEED_OPTIONS, "vector_threshold": 0.5, "max_magnitude_ratio": 2.0,
    }
    description: ClassVar[str] = (
        "The seed's q/k/v bias comparison: per-layer std of the bias vectors, correlated over "
        "depth (shape only, the same false-positive problem as attention_std), plus the bias "
        "vectors themselves where shapes match (centred correlation per layer) and their "
        "magnitude ratio, which curve normalisation hides and where independent models differ. "
        "Weak evidence; not applicable when either model has no q/k/v biases."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        opts = seed.merged(self.default_options, options)
        return vector_seed_evidence(self.name, QKV_BIASES, "q/k/v biases", a, b, opts,
                                    use_magnitude=True)


CHECK = QkvBias()
