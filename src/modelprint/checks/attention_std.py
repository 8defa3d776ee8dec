"""attention_std — the seed's statistic (HonestAGI, arXiv 2507.03014), exactly, with context.

Statistic (METHODS.md §1.1): for each layer l and projection X ∈ {Q, K, V, O}, s_X(l) is the
unbiased std of all entries of W_X(l), in float64 (the fingerprint's ``std`` curves); per
projection r_X = Pearson(s_X^A, s_X^B) over the aligned layers; ``score`` = mean of the r_X.
Z-scoring the curves (the seed's "normalisation") does not change Pearson's r; we z-score only
the curves shown in the report.

Why it is *weak* (METHODS.md §2): a depth curve has 6–64 smooth, trending points — about five
effective degrees of freedom — and any two models trained with a similar recipe (same init
scheme, pre-norm residual stack, weight decay) share that trend. Unrelated same-shape 7B models
reach r ≈ 0.9 (deepseek-llm-7b vs llama2-7b: 0.91); the seed called 0.927 evidence. So a high
score is expected for independent models, and this check alone never makes the verdict
``derived``.

Decision rule (``indicates_derivation``), chosen so that independent pairs do not trip it:
all of
  1. ``score ≥ threshold`` (default 0.95, above the 0.91 reached by a known unrelated pair);
  2. both detrended views ``≥ detrended_threshold`` (default 0.8): the mean r of first
     differences and the mean r of residuals from a quadratic in depth, each with
     ``trim_edges`` (default 1) layers left out at each end. A shared trend, a shared curved
     shape or a shared edge jump cannot pass; what passes is the layer-to-layer wiggle that a
     copy keeps and an independent model does not share. When a view cannot be computed
     (too few layers, flat) the rule does not pass: it cannot rule a shared trend out;
  3. at least ``min_layers`` (default 8) aligned layers: below that even detrended r of
     unrelated curves is large by chance (r over 5 points reaches 0.8 in ~5 % of cases);
  4. when a null panel of independent pairs exists (``calibration/nulls.json``), the empirical
     p of the score (and of each detrended view, when its panel exists) ``≤ alpha`` (default
     0.01); a panel too small to reach alpha requires the score to exceed *every* null pair.
Without a null panel, rules 1–3 are the conservative fallback and the evidence says
"not calibrated". Projections whose curve is flat on either side (Gemma 3's q/k/v) carry no
information and are left out of the mean, and named (flat = coefficient of variation over
depth below ``flat_tolerance``, default 3e-3: quantisation noise of a constant curve is
~3e-4, trained curves vary by 0.07 or more; see ``curves.CURVE_FLAT_CV``); if none is
informative the check reports "no information" (``indicates_derivation`` null). Different
depths are compared only over an explicit ``layer_map`` (list of ``[layer_candidate,
layer_reference]``); never interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from modelprint.calibration.nulls import NullPanel, empirical_p, null_scores
from modelprint.checks import curves as cv
from modelprint.checks.base import WEAK, Evidence, ModelView
from modelprint.fingerprint.model import Fingerprint
from modelprint.roles import ATTENTION_PROJECTIONS

_SHORT = {"attn.q": "Q", "attn.k": "K", "attn.v": "V", "attn.o": "O"}

#: Options every seed-curve check accepts (the YAML loader validates against these).
SEED_OPTIONS: dict[str, Any] = {
    "threshold": 0.95,
    "detrended_threshold": 0.8,
    "alpha": 0.01,
    "trim_edges": 1,
    "min_layers": 8,
    "flat_tolerance": cv.CURVE_FLAT_CV,
    "layer_map": [],
}


def short(role: str) -> str:
    return _SHORT.get(role, role)


# -- the curve treatment shared by attention_std, qkv_bias and layernorm --------------------


@dataclass
class CurveResult:
    """The seed's curve treatment of a set of roles for one pair."""

    alignment: cv.Alignment
    alignment_source: str
    comparisons: dict[str, cv.CurveComparison] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)      # role -> which side lacks it
    flat: dict[str, str] = field(default_factory=dict)        # role -> which side is flat
    missing_layers: dict[str, cv.Alignment] = field(default_factory=dict)
    plot: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)

    @property
    def informative(self) -> list[str]:
        return [r for r, c in self.comparisons.items() if c.informative]

    @property
    def score(self) -> float | None:
        return cv.mean_or_none([self.comparisons[r].r for r in self.informative])

    @property
    def r_detrended(self) -> float | None:
        return cv.mean_or_none([self.comparisons[r].r_detrended for r in self.informative])

    @property
    def r_residual(self) -> float | None:
        return cv.mean_or_none([self.comparisons[r].r_residual for r in self.informative])

    @property
    def n_layers(self) -> int:
        return max((c.n for c in self.comparisons.values()), default=0)

    def details(self) -> dict[str, Any]:
        return {
            "alignment": [list(p) for p in self.alignment],
            "alignment_source": self.alignment_source,
            "per_role": {r: c.to_json() for r, c in self.comparisons.items()},
            "informative": self.informative,
            "flat": self.flat,
            "absent": self.absent,
            "missing_layers": {r: [list(p) for p in m] for r, m in self.missing_layers.items()
                               if m},
            "r_detrended": self.r_detrended,
            "r_residual": self.r_residual,
            "spearman": cv.mean_or_none([self.comparisons[r].spearman
                                         for r in self.informative]),
            "n_eff": cv.mean_or_none([self.comparisons[r].n_eff for r in self.informative]),
            "curves": self.plot,
        }


def resolve(a: Fingerprint, b: Fingerprint,
            options: dict[str, Any]) -> tuple[cv.Alignment | None, str]:
    """Layer alignment from ``options["layer_map"]`` or equal depth; else (None, reason)."""
    return cv.resolve_alignment(a.num_layers, b.num_layers, options.get("layer_map") or [],
                                where="layer_map")


def evaluate_curves(a: Fingerprint, b: Fingerprint, roles: Sequence[str],
                    alignment: cv.Alignment, source: str, *, trim: int,
                    flat_cv: float = cv.CURVE_FLAT_CV) -> CurveResult:
    """Per role: pair the std curves over ``alignment`` and compare them every way."""
    res = CurveResult(alignment=alignment, alignment_source=source)
    for role in roles:
        ca, cb = cv.std_curve(a, role), cv.std_curve(b, role)
        if ca is None or cb is None:
            res.absent[role] = ("both" if ca is None and cb is None
                                else "candidate" if ca is None else "reference")
            continue
        pc = cv.pair_curves(ca, cb, alignment)
        comp = cv.compare_curves(pc.x, pc.y, trim=trim, flat_cv=flat_cv)
        res.comparisons[role] = comp
        res.missing_layers[role] = pc.missing
        if comp.flat_a or comp.flat_b:
            res.flat[role] = ("both" if comp.flat_a and comp.flat_b
                              else "candidate" if comp.flat_a else "reference")
        res.plot[role] = {"a": cv.zscore(pc.x, flat_cv), "b": cv.zscore(pc.y, flat_cv)}
    return res


@dataclass
class WeakDecision:
    p_value: float | None
    null: dict[str, Any]
    calibration: str                 # one phrase: calibrated how, or not
    failed: list[str]                # the rule's conditions that did not hold

    @property
    def indicates(self) -> bool:
        return not self.failed

    def add(self, failures: Sequence[str]) -> None:
        self.failed.extend(failures)

    @property
    def explanation(self) -> str:
        if self.failed:
            return f"{self.calibration}; no indication: " + "; ".join(self.failed)
        return f"{self.calibration}; indicates derivation (weak evidence)"


def weak_decision(check: str, res: CurveResult, options: dict[str, Any]) -> WeakDecision:
    """The weak-check rule of the module docstring, recording which conditions failed."""
    score = res.score
    assert score is not None, "weak_decision needs at least one informative curve"
    thr, dthr = float(options["threshold"]), float(options["detrended_threshold"])
    alpha, min_layers = float(options["alpha"]), int(options["min_layers"])
    failed: list[str] = []
    if res.n_layers < min_layers:
        failed.append(f"only {res.n_layers} aligned layers (< min_layers {min_layers})")
    if score < thr:
        failed.append(f"score {score:.3f} < threshold {thr:g}")
    views = {"detrended r": res.r_detrended, "quadratic-residual r": res.r_residual}
    for what, val in views.items():
        if val is None:
            failed.append(f"no {what} (too few layers or flat)")
        elif val < dthr:
            failed.append(f"{what} {val:.3f} < {dthr:g}")
    panel = null_scores(check, "score")
    p = empirical_p(score, panel) if panel is not None else None
    null: dict[str, Any]
    if panel is None:
        null = {"scores": [], "source": None, "calibrated": False,
                "note": "not calibrated: no null panel of independent pairs for this check"}
        calib = "not calibrated (no null panel; conservative thresholds only)"
    else:
        null = {**panel.to_json(), "calibrated": True}
        calib = f"p = {p:.3g} vs {panel.size} independent pairs (floor {panel.floor:.3g})"
        if panel.provisional:
            calib += " [provisional synthetic panel]"
        _require_p(failed, "score", p, panel, alpha)
        for stat, val in (("r_detrended", res.r_detrended), ("r_residual", res.r_residual)):
            sp = null_scores(check, stat)
            if sp is not None and val is not None:
                p_s = empirical_p(val, sp)
                null[stat] = {**sp.to_json(), "p_value": p_s}
                _require_p(failed, stat, p_s, sp, alpha)
    return WeakDecision(p_value=p, null=null, calibration=calib, failed=failed)


def _require_p(failed: list[str], what: str, p: float | None, panel: NullPanel,
               alpha: float) -> None:
    limit = max(alpha, panel.floor)
    if p is not None and p > limit:
        failed.append(f"{what} p {p:.3g} > {limit:.3g}")


def no_information(check: str, threshold: float, reason: str,
                   details: dict[str, Any]) -> Evidence:
    """Applicable, but nothing to compare (flat curves): not a pass, not a finding."""
    return Evidence(check=check, strength=WEAK, applicable=True, score=None,
                    threshold=threshold, p_value=None, indicates_derivation=None,
                    summary=f"no information: {reason}", reason=reason, details=details)


def describe_roles(res: CurveResult) -> str:
    """Which roles were compared, which were flat and which absent; empty groups are left
    out (no "over ;" when nothing was informative)."""
    parts = [f"over {'/'.join(short(r) for r in res.informative)}"] if res.informative else []
    if res.flat:
        parts.append("flat (no information): " + ", ".join(
            f"{short(r)} ({side})" for r, side in res.flat.items()))
    if res.absent:
        parts.append("absent: " + ", ".join(f"{short(r)} ({side})"
                                            for r, side in res.absent.items()))
    return "; ".join(parts)


def describe_absent(res: CurveResult) -> str:
    sides = set(res.absent.values())
    if sides == {"candidate"}:
        return "the candidate lacks them"
    if sides == {"reference"}:
        return "the reference lacks them"
    return "missing on both sides" if sides == {"both"} else "missing on either side"


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def merged(defaults: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
    return {**defaults, **(options or {})}


# -- the check ------------------------------------------------------------------------------


class AttentionStd:
    name: ClassVar[str] = "attention_std"
    strength: ClassVar[str] = WEAK
    default_options: ClassVar[dict[str, Any]] = dict(SEED_OPTIONS)
    description: ClassVar[str] = (
        "The seed (HonestAGI) statistic: per layer the std of the Q, K, V and O weights, and "
        "the Pearson correlation of the two models' depth curves, averaged over Q/K/V/O. It "
        "sees only the shape of the curves: independently trained models of similar "
        "architecture routinely reach r ≈ 0.9 (a known false-positive problem), so a high "
        "score is weak evidence and is judged against independent pairs and on detrended "
        "curves; it never decides 'derived' alone. Flat curves carry no information; "
        "different depths need an explicit layer_map."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        opts = merged(self.default_options, options)
        thr = float(opts["threshold"])
        fa, fb = a.fingerprint, b.fingerprint
        alignment, source = resolve(fa, fb, opts)
        if alignment is None:
            return Evidence.not_applicable(self.name, WEAK, source, threshold=thr)
        res = evaluate_curves(fa, fb, ATTENTION_PROJECTIONS, alignment, source,
                              trim=int(opts["trim_edges"]),
                              flat_cv=float(opts["flat_tolerance"]))
        if not res.comparisons:
            return Evidence.not_applicable(
                self.name, WEAK, f"no attention projection std curves ({describe_absent(res)})",
                threshold=thr)
        details = res.details()
        score = res.score
        if score is None:
            why = ("every attention std curve is flat or too short on one side "
                   f"({describe_roles(res)}); a constant curve correlates with nothing")
            details["null"] = {"scores": [], "source": None, "calibrated": False}
            return no_information(self.name, thr, why, details)
        dec = weak_decision(self.name, res, opts)
        details["null"] = dec.null
        details["rule"] = dec.explanation
        rd = res.r_detrended
        n_eff = details["n_eff"]
        summary = (f"mean std-curve r = {score:.3f} {describe_roles(res)}; detrended r = "
                   + fmt(rd) + ", residual r = " + fmt(res.r_residual)
                   + ("" if n_eff is None else f", n_eff ≈ {n_eff:.1f} of {len(alignment)}")
                   + f"; {dec.explanation}")
        return Evidence(check=self.name, strength=WEAK, applicable=True, score=score,
                        threshold=thr, p_value=dec.p_value, indicates_derivation=dec.indicates,
                        summary=summary, details=details)


CHECK = AttentionStd()

__all__ = ["CHECK", "SEED_OPTIONS", "CurveResult", "evaluate_curves", "weak_decision"]
