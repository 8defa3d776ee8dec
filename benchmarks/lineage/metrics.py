"""Accuracy statistics of checks and verdicts over labelled pairs (float64, no sklearn).

A pair record here is the runner's flat form: ``label`` (derived | independent), ``kind``,
``verdict`` and per check ``{score, p_value, indicates_derivation, applicable}``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from scipy import stats

VERDICTS = ("derived", "independent", "inconclusive")


def roc_auc(pos: list[float], neg: list[float]) -> float | None:
    """P(score of a derived pair > score of an independent pair), ties counted half
    (the Mann-Whitney form of the ROC AUC). None when either class is empty."""
    if not pos or not neg:
        return None
    x = np.concatenate([np.asarray(pos, np.float64), np.asarray(neg, np.float64)])
    ranks = stats.rankdata(x)
    n1, n0 = len(pos), len(neg)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def check_table(records: list[dict[str, Any]], check: str) -> dict[str, Any]:
    """ROC AUC, TPR and false positives at the check's default threshold, overall and by
    derivation kind. TPR counts a positive only when the check *says* derived
    (``indicates_derivation is True``); not-applicable and no-information count as misses,
    and are also reported separately so coverage is visible."""
    pos_s, neg_s = [], []
    out: dict[str, Any] = {"check": check}
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    fp_pairs: list[list[str]] = []
    n_pos = n_neg = tp = fp = 0
    for r in records:
        e = r["checks"].get(check)
        if e is None:
            continue
        state = _state(e)
        if r["label"] == "derived":
            n_pos += 1
            tp += state == "derived"
            by_kind[r["kind"]][state] += 1
            if e.get("score") is not None and e.get("applicable"):
                pos_s.append(float(e["score"]))
        else:
            n_neg += 1
            if state == "derived":
                fp += 1
                fp_pairs.append([r["a"], r["b"]])
            by_kind["independent:" + r["kind"]][state] += 1
            if e.get("score") is not None and e.get("applicable"):
                neg_s.append(float(e["score"]))
    out.update(
        positives=n_pos, negatives=n_neg, true_positives=tp, false_positives=fp,
        tpr=tp / n_pos if n_pos else None, fpr=fp / n_neg if n_neg else None,
        auc=roc_auc(pos_s, neg_s), auc_pairs=[len(pos_s), len(neg_s)],
        false_positive_pairs=fp_pairs[:20],
        by_kind={k: dict(v) for k, v in sorted(by_kind.items())},
    )
    return out


def _state(e: dict[str, Any]) -> str:
    if e.get("error"):
        return "error"
    if not e.get("applicable"):
        return "not_applicable"
    if e.get("indicates_derivation") is None:
        return "no_information"
    return "derived" if e["indicates_derivation"] else "not_derived"


def confusion(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Truth (rows) x verdict (columns)."""
    m = {t: dict.fromkeys(VERDICTS, 0) for t in ("derived", "independent")}
    for r in records:
        if r.get("verdict") in VERDICTS:
            m[r["label"]][r["verdict"]] += 1
    return m


def verdict_by_kind(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        key = r["kind"] if r["label"] == "derived" else "independent:" + r["kind"]
        out[key][r.get("verdict") or "error"] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def lineage_distinct(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One independent pair per unordered pair of roots (base lineages).

    The zoo's independent pairs are not independent of each other: every derivative of a
    base repeats, almost exactly, the p-value of that base against the other model, so 15
    derivatives of one base turn one p of 0.03 into 15 "false alarms" and a KS test over all
    pairs rejects a valid test. A validity test needs one pair per lineage pair; the pair of
    the two roots themselves represents it when it was scored (else the first one scored)."""
    best: dict[frozenset[str], dict[str, Any]] = {}
    for r in records:
        roots = r.get("roots")
        if r["label"] != "independent" or not roots or None in roots:
            continue
        key = frozenset(roots)
        is_base = {r["a"], r["b"]} == set(roots)
        if key not in best or (is_base and {best[key]["a"], best[key]["b"]} != set(roots)):
            best[key] = r
    return list(best.values())


def p_value_table(records: list[dict[str, Any]], check: str) -> dict[str, Any] | None:
    """p-values of a check on independent pairs: deciles and a KS test against U(0, 1).

    Under a valid test, independent pairs give p ~ U(0,1) (or stochastically larger for a
    conservative one). Empirical panel p-values are discrete ((1+k)/(N+1)), so the KS test
    is approximate there. The failure that matters is p-values that are too small
    (P(p <= t) > t: too many false alarms); ``validity_p`` tests exactly that at every
    attainable t with a binomial test (Bonferroni over the t's), which discreteness cannot
    fool; the one-sided KS p is kept for continuous p-values."""
    ps = [float(r["checks"][check]["p_value"]) for r in records
          if r["label"] == "independent" and check in r["checks"]
          and r["checks"][check].get("p_value") is not None]
    if not ps:
        return None
    arr = np.asarray(ps, np.float64)
    two = stats.kstest(arr, "uniform")
    # alternative="greater": the empirical CDF lies above the uniform CDF, i.e. p-values
    # are too small (anti-conservative)
    small = stats.kstest(arr, "uniform", alternative="greater")
    # Validity, P(p <= t) <= t, checked where discrete p-values can sit: at each distinct
    # observed value t < 1, a one-sided binomial test of #(p <= t); Bonferroni over the t's.
    worst_t, worst_p, excess = 1.0, 1.0, 0.0
    distinct = np.unique(arr[arr < 1.0])
    for t in distinct:
        k = int((arr <= t).sum())
        bp = float(stats.binomtest(k, len(arr), float(t), alternative="greater").pvalue)
        if bp < worst_p:
            worst_t, worst_p = float(t), bp
        excess = max(excess, k / len(arr) - float(t))
    validity_p = min(1.0, worst_p * max(1, len(distinct)))
    return {"n": len(ps), "min": float(arr.min()), "median": float(np.median(arr)),
            "max_excess": float(excess), "worst_t": worst_t, "validity_p": validity_p,
            "deciles": [float(x) for x in np.quantile(arr, np.linspace(0.1, 0.9, 9))],
            "fraction_below_0.05": float((arr < 0.05).mean()),
            "ks_statistic": float(two.statistic), "ks_p": float(two.pvalue),
            "ks_anticonservative_p": float(small.pvalue)}


def rate(records: list[dict[str, Any]], check: str, kind: str) -> dict[str, Any]:
    """How often ``check`` says derived on independent pairs of ``kind``."""
    sel = [r for r in records if r["label"] == "independent" and r["kind"] == kind
           and check in r["checks"]]
    states = Counter(_state(r["checks"][check]) for r in sel)
    scores = [float(r["checks"][check]["score"]) for r in sel
              if r["checks"][check].get("score") is not None]
    fired = states.get("derived", 0)
    thr = [float(r["checks"][check]["threshold"]) for r in sel
           if r["checks"][check].get("threshold") is not None]
    above = sum(1 for r in sel if r["checks"][check].get("score") is not None
                and r["checks"][check].get("threshold") is not None
                and r["checks"][check]["score"] >= r["checks"][check]["threshold"])
    layers_short = sum(1 for r in sel if "min_layers" in (r["checks"][check].get("summary") or ""))
    return {"pairs": len(sel), "says_derived": fired,
            "rate": fired / len(sel) if sel else None, "states": dict(states),
            "threshold": thr[0] if thr else None, "raw_score_at_or_above_threshold": above,
            "pairs_with_too_few_layers": layers_short,
            "score_quantiles": ([float(x) for x in np.quantile(scores, [0, 0.5, 0.9, 1])]
                                if scores else None)}
