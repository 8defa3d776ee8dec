"""``results.json`` and ``RESULTS.md`` from the runner's pair records."""

from __future__ import annotations

import json
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics

SEED_CHECK = "attention_std"


def _f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{nd}f}"
    return str(x)


def compute(m: dict[str, Any], recs: list[dict[str, Any]]) -> dict[str, Any]:
    checks: list[str] = []
    for r in recs:
        for c in r["checks"]:
            if c not in checks:
                checks.append(c)
    strength = {c: next((r["checks"][c].get("strength") for r in recs if c in r["checks"]), None)
                for c in checks}
    per_check = {c: {**metrics.check_table(recs, c), "strength": strength[c]} for c in checks}
    distinct = metrics.lineage_distinct(recs)
    pvals = {c: metrics.p_value_table(distinct, c) for c in checks}
    pvals_all = {c: metrics.p_value_table(recs, c) for c in checks}
    secs = {c: [r["checks"][c]["seconds"] for r in recs
                if c in r["checks"] and r["checks"][c].get("seconds") is not None]
            for c in checks}
    return {
        "pairs": len(recs),
        "pair_counts": {f"{k[0]}:{k[1]}": v for k, v in sorted(
            Counter((r["label"], r["kind"]) for r in recs).items())},
        "verdict_confusion": metrics.confusion(recs),
        "verdict_by_kind": metrics.verdict_by_kind(recs),
        "checks": per_check,
        "p_values_independent": {c: v for c, v in pvals.items() if v is not None},
        "p_values_independent_all_pairs": {c: v for c, v in pvals_all.items()
                                           if v is not None},
        "lineage_pairs": len(distinct),
        "seed_statistic_same_recipe": metrics.rate(recs, SEED_CHECK, "same_recipe"),
        "check_seconds_mean": {c: float(np.mean(v)) if v else None for c, v in secs.items()},
        "pair_seconds_mean": float(np.mean([r["seconds"] for r in recs])) if recs else None,
        "errors": [[r["candidate"], r["reference"], r["verdict_reason"]] for r in recs
                   if r["verdict"] is None][:20],
    }


def fingerprint_only(full: list[dict[str, Any]], fp: list[dict[str, Any]]) -> dict[str, Any]:
    """What giving the reference as a fingerprint (no weights) changes: the verdict's
    confusion matrix, each check's detections and false positives in both modes, and the
    pairs whose verdict differs, by kind."""
    by_key = {(r["candidate"], r["reference"]): r for r in fp}
    changed: Counter[str] = Counter()
    examples: list[list[str]] = []
    for r in full:
        o = by_key.get((r["candidate"], r["reference"]))
        if o is not None and o.get("verdict") != r.get("verdict"):
            kind = r["kind"] if r["label"] == "derived" else "independent:" + r["kind"]
            changed[f"{kind}: {r.get('verdict')} -> {o.get('verdict')}"] += 1
            if len(examples) < 10:
                examples.append([r["candidate"], r["reference"], str(r.get("verdict")),
                                 str(o.get("verdict"))])
    checks = {}
    for c in (full[0]["checks"] if full else {}):
        a, b = metrics.check_table(full, c), metrics.check_table(fp, c)
        checks[c] = {"full": [a["true_positives"], a["false_positives"]],
                     "fingerprint": [b["true_positives"], b["false_positives"]],
                     "positives": a["positives"], "negatives": a["negatives"]}
    return {"pairs": len(fp), "verdict_confusion": metrics.confusion(fp),
            "verdict_changes": dict(sorted(changed.items())), "examples": examples,
            "checks": checks}


def write_results(out: Path, m: dict[str, Any], recs: list[dict[str, Any]],
                  info: dict[str, Any], fp_only: list[dict[str, Any]] | None = None) -> None:
    res = compute(m, recs)
    if fp_only:
        res["fingerprint_only"] = fingerprint_only(recs, fp_only)
    doc = {"format": "modelprint.lineage-results/1", "profile": m["profile"],
           "zoo_build": m.get("build", {}), "unigram_baseline": m["unigram_baseline"],
           "run": info, "machine": {"python": platform.python_version(),
                                    "processor": platform.machine()},
           "summary": res, "records": [_slim(r) for r in recs]}
    out.mkdir(parents=True, exist_ok=True)   # --out may name a new directory
    (out / "results.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    (out / "RESULTS.md").write_text(markdown(m, res, info))


def _rel(path: str | None) -> str:
    if not path:
        return "src/modelprint/calibration/nulls.json"
    repo = Path(__file__).resolve().parents[2]
    p = Path(path)
    return str(p.relative_to(repo)) if p.is_relative_to(repo) else str(p)


def _slim(r: dict[str, Any]) -> dict[str, Any]:
    """Keep a check's summary text only where it disagrees with the label (to keep the
    committed JSON small while explaining every error)."""
    out = dict(r)
    out["checks"] = {}
    for c, e in r["checks"].items():
        said = e.get("indicates_derivation")
        wrong = said is not None and said != (r["label"] == "derived")
        out["checks"][c] = {k: v for k, v in e.items()
                            if v is not None and (k != "summary" or wrong)}
    return out


def _zoo_table(m: dict[str, Any]) -> list[str]:
    lines = ["| model | kind | eval loss | unigram | train steps | seconds (cpu) |",
             "|---|---|---|---|---|---|"]
    for n, e in m["models"].items():
        if e["kind"] == "real":
            continue
        loss = e.get("losses", {})
        lines.append(f"| {n} | {e['kind']} | {_f(e.get('eval_loss'))} | "
                     f"{_f(m['unigram_baseline']) if e['kind'] == 'base' else ''} | "
                     f"{loss.get('steps', '')} | {e.get('cpu_seconds', e.get('build_seconds'))} |")
    return lines


def findings(res: dict[str, Any]) -> list[str]:
    """Plain statements of what went wrong (or that nothing did)."""
    out = []
    conf = res["verdict_confusion"]
    n_ind = sum(conf["independent"].values())
    n_der = sum(conf["derived"].values())
    out.append(f"- Verdict: {conf['independent']['derived']} of {n_ind} independent pairs were "
               f"called *derived* (false accusations); {conf['derived']['derived']} of {n_der} "
               f"derived pairs were called *derived*.")
    for c, t in res["checks"].items():
        if t["false_positives"]:
            kinds = {k.split(":", 1)[1]: v.get("derived", 0) for k, v in t["by_kind"].items()
                     if k.startswith("independent:") and v.get("derived")}
            out.append(f"- `{c}` ({t['strength']}) says derived on {t['false_positives']} of "
                       f"{t['negatives']} independent pairs: {kinds}.")
    for c, t in res["p_values_independent"].items():
        if t["validity_p"] < 0.01:
            out.append(f"- `{c}` p-values are too small on independent lineage pairs: "
                       f"P(p ≤ {_f(t['worst_t'])}) is {_f(t['worst_t'] + t['max_excess'])}"
                       f" at worst (share below 0.05: {_f(t['fraction_below_0.05'])}; binomial "
                       f"validity p {_f(t['validity_p'])}): not valid p-values for trained "
                       "independent models.")
    missed = [f"{k} ({row.get('derived', 0)}/{sum(row.values())})"
              for k, row in res["verdict_by_kind"].items()
              if not k.startswith("independent:") and row.get("derived", 0) < sum(row.values())]
    if missed:
        out.append("- Derivation kinds not always detected by the verdict: " + ", ".join(missed))
    return out


def _fp_section(fp: dict[str, Any] | None) -> list[str]:
    L = ["", "## Fingerprint-only references", ""]
    if not fp:
        return [*L, "Not run (`--no-fp-only`)."]
    conf = fp["verdict_confusion"]
    L += [f"The same {fp['pairs']} pairs with every reference given as its `*.fp.json` "
          "fingerprint (the candidate keeps its weights), as an audit against a reference "
          "whose weights are not at hand runs.", "",
          "| truth \\ verdict | derived | independent | inconclusive |", "|---|---|---|---|"]
    for t, row in conf.items():
        L.append(f"| {t} | {row['derived']} | {row['independent']} | {row['inconclusive']} |")
    L += ["", "Says *derived* (true positives / false positives), full weights vs "
          "fingerprint-only reference:", "",
          "| check | full weights | fingerprint only |", "|---|---|---|"]
    for c, t in fp["checks"].items():
        L.append(f"| {c} | {t['full'][0]}/{t['positives']} · {t['full'][1]}/{t['negatives']} "
                 f"| {t['fingerprint'][0]}/{t['positives']} · "
                 f"{t['fingerprint'][1]}/{t['negatives']} |")
    L += ["", "Verdicts that change: " + (", ".join(
        f"{k} ({v})" for k, v in fp["verdict_changes"].items()) or "none") + "."]
    return L


def _p_rows(tables: dict[str, Any]) -> list[str]:
    rows = [f"| {c} | {t['n']} | {_f(t['median'])} | {_f(t['fraction_below_0.05'])} | "
            f"{_f(t['ks_statistic'])} | {_f(t['ks_p'])} | {_f(t['ks_anticonservative_p'])} "
            f"| {_f(t['validity_p'])} |" for c, t in tables.items()]
    return rows or ["| (no check reported p-values) | | | | | | | |"]


def markdown(m: dict[str, Any], res: dict[str, Any], info: dict[str, Any]) -> str:
    calib = sorted(n for n, e in m["models"].items() if e.get("role") == "calibration")
    L = [
        "# Lineage benchmark results",
        "",
        f"Zoo profile **{m['profile']}**: {len(m['models'])} models, "
        f"{len(m['pairs'])} labelled pairs; {res['pairs']} *evaluation* pairs scored here.",
        "Regenerate: `python -m benchmarks.lineage.zoo` then `python -m benchmarks.lineage."
        "build_nulls` then `python -m benchmarks.lineage.run` (add `--small` to each for the "
        "small zoo).",
        "",
        "## Hold-out split",
        "",
        f"Null panels (`{_rel(info.get('nulls'))}`, used for this "
        "run) are built by `build_nulls.py` "
        "only from independent pairs among the *calibration* base models "
        f"({', '.join(calib) or 'none'}). Those models and every pair touching them are "
        "never scored here; scored pairs involve only evaluation models.",
        "",
        "## Verdict",
        "",
        "| truth \\ verdict | derived | independent | inconclusive |",
        "|---|---|---|---|",
    ]
    for t, row in res["verdict_confusion"].items():
        L.append(f"| {t} | {row['derived']} | {row['independent']} | {row['inconclusive']} |")
    L += ["", "By derivation kind (counts of verdicts):", "",
          "| kind | derived | independent | inconclusive |", "|---|---|---|---|"]
    for k, row in res["verdict_by_kind"].items():
        L.append(f"| {k} | {row.get('derived', 0)} | {row.get('independent', 0)} | "
                 f"{row.get('inconclusive', 0)} |")
    L += ["", "## Findings (generated from the numbers below)", "", *findings(res)]
    L += ["", "## Checks at their default thresholds", "",
          "TPR counts a derived pair only when the check says *derived*; not applicable and "
          "no-information count as misses. AUC is over pairs where the check gave a score.",
          "", "| check | strength | ROC AUC (pos/neg scored) | TPR | false positives |",
          "|---|---|---|---|---|"]
    for c, t in res["checks"].items():
        L.append(f"| {c} | {t['strength']} | {_f(t['auc'])} ({t['auc_pairs'][0]}/"
                 f"{t['auc_pairs'][1]}) | {t['true_positives']}/{t['positives']} "
                 f"({_f(t['tpr'])}) | {t['false_positives']}/{t['negatives']} |")
    kinds = sorted({k for t in res["checks"].values() for k in t["by_kind"]
                    if not k.startswith("independent:")})
    L += ["", "Says *derived*, by derivation kind (said / pairs):", "",
          "| kind | " + " | ".join(res["checks"]) + " |",
          "|---|" + "---|" * len(res["checks"])]
    for k in kinds:
        cells = []
        for t in res["checks"].values():
            row = t["by_kind"].get(k, {})
            cells.append(f"{row.get('derived', 0)}/{sum(row.values())}" if row else "–")
        L.append(f"| {k} | " + " | ".join(cells) + " |")
    L += ["", "## p-values on independent pairs", "",
          "Valid p-values are uniform (or larger) on independent pairs. KS tests against "
          "U(0,1); 'one-sided KS p' tests only for p-values that are too small; 'validity p' "
          "is the discrete-safe binomial test of P(p ≤ t) ≤ t at every attainable t.", "",
          f"The test uses **one pair per independent lineage pair** ({res['lineage_pairs']} "
          "pairs of roots; the two roots themselves where scored): every derivative of a base "
          "repeats that base's p-value against the other model almost exactly, so the "
          "independent pairs are not independent samples, and a test over all of them rejects "
          "valid p-values. The all-pairs figures follow for reference.", "",
          "| check | n | median | share < 0.05 | KS D | KS p | one-sided KS p | validity p |",
          "|---|---|---|---|---|---|---|---|"]
    L += _p_rows(res["p_values_independent"])
    L += ["", "All independent evaluation pairs (dependent samples, see above):", "",
          "| check | n | median | share < 0.05 | KS D | KS p | one-sided KS p | validity p |",
          "|---|---|---|---|---|---|---|---|"]
    L += _p_rows(res.get("p_values_independent_all_pairs", {}))
    L += _fp_section(res.get("fingerprint_only"))
    s = res["seed_statistic_same_recipe"]
    L += ["", "## The seed statistic on same-recipe independent models", ""]
    if s["pairs"]:
        L.append(f"`{SEED_CHECK}` said *derived* on **{s['says_derived']} of {s['pairs']}** "
                 f"same-recipe independent pairs (false-positive rate {_f(s['rate'])}); "
                 f"outcomes {s['states']}; score min/median/90%/max "
                 f"{[round(x, 3) for x in s['score_quantiles'] or []]}.")
        L.append(f"The raw statistic reached its threshold ({s['threshold']}) on "
                 f"{s['raw_score_at_or_above_threshold']} pairs; "
                 f"{s['pairs_with_too_few_layers']} pairs had fewer aligned layers than the "
                 "check's `min_layers`, which by itself prevents an indication.")
    else:
        L.append("No same-recipe independent pairs were scored.")
    L += ["", "## Paths and run time", ""]
    for path in ("audit", "cli"):
        p = info.get(path) or {}
        ag = p.get("agreement")
        if p.get("skipped"):
            L.append(f"- {path}: skipped ({p['skipped']})")
        elif ag:
            L.append(f"- {path}: {ag['identical']}/{ag['compared']} pairs identical to the "
                     f"engine (verdict and every score); differences: {ag['examples']}")
        else:
            L.append(f"- {path}: no results ({p})")
    L.append(f"- engine: {info['engine_seconds']} s for {res['pairs']} pairs "
             f"(mean {_f(res['pair_seconds_mean'])} s per pair, model loading included)")
    L.append("- mean seconds per check and pair: " + ", ".join(
        f"{c} {_f(v)}" for c, v in res["check_seconds_mean"].items()))
    b = m.get("build", {})
    cpu = sum(e.get("cpu_seconds") or 0 for e in m["models"].values())
    L.append(f"- zoo build (last run): {b.get('seconds')} s wall, jobs={b.get('jobs')}, "
             f"{len(b.get('built', []))} built, {len(b.get('reused', []))} reused; "
             f"{cpu:.0f} CPU seconds of model building in all (≈ {cpu / 120:.0f} min on two "
             "idle cores, plus about a minute for corpus and tokenizer)")
    if res["errors"]:
        L += ["", "Errors:", ""] + [f"- {e}" for e in res["errors"]]
    L += ["", "## Zoo", "", f"Unigram baseline (eval split): {m['unigram_baseline']} nats.", ""]
    L += _zoo_table(m)
    return "\n".join(L) + "\n"
