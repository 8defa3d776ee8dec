"""RESULTS.md for the disguise benchmark: one table per base (transform x composition x check),
the control pairs, and the list of what is not detected, all generated from the records."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DECISIVE = ("identity", "weights_cosine", "embedding_alignment", "attention_cka",
            "mlp_matching", "moe_upcycling", "activation_matching")
COMPOSITIONS = ("alone", "finetune", "gguf", "layer_drop", "moe")
ABBREV = {"identity": "ident", "weights_cosine": "cos", "embedding_alignment": "emb",
          "attention_cka": "cka", "mlp_matching": "mlp", "moe_upcycling": "moe",
          "activation_matching": "act"}

LEGEND = """\
Cells of the check columns: **✓** the check indicates derivation (with its p-value; `exact`
= a deterministic finding without one), `·` it applied and found nothing (p shown), `n/a` it
does not apply (or gives no information). `std r` is the seed statistic (`attention_std`'s
Pearson r of the per-layer std curves; weak, never decides). `Δlogit` is the max |logit
difference| of the disguise alone against the base on 4 x 64 tokens of held-out text, in
float64 arithmetic / from the stored file (float32 forward), relative to the max |logit|.
Verdicts are at the default α = 1e-6 (Bonferroni over the decisive checks carrying a p-value),
without null panels. `undone` is what the report says it undid before comparing: `rot r` the
residual stream was found rotated (orthogonal fit residual r on the shared tokens; the report
says "residual stream rotated: orthogonal fit residual r ..."), `fold` a side's norm gains were
found folded into its weights (compared in canonical form). `s` is the wall time of the engine
for the pair (both fingerprints and every check). A column absent from a run (`act` before
the activation check existed) shows `–`."""


def _p(p: Any) -> str:
    return "" if p is None else f" {p:.0e}" if p < 1e-3 else f" {p:.2f}"


def cell(c: dict[str, Any] | None, present: bool = True) -> str:
    if not present:
        return "–"
    if c is None or not c.get("applicable") or c.get("indicates_derivation") is None:
        return "n/a"
    if c["indicates_derivation"]:
        return "**✓**" + (_p(c.get("p_value")) if c.get("p_value") is not None else " exact")
    return "·" + _p(c.get("p_value"))


def _score(c: dict[str, Any] | None) -> str:
    if not c or c.get("score") is None:
        return "n/a"
    return f"{c['score']:.2f}"


def _diff(r: dict[str, Any]) -> str:
    f, s = r.get("function"), r.get("stored_function")
    if not f:
        return ""
    out = f"{f['relative']:.0e}"
    if s:
        out += f" / {s['relative']:.0e}"
    return out


ROTATED = re.compile(r"residual stream rotated: orthogonal fit residual ([0-9.e+-]+)")


def undone(checks: dict[str, Any]) -> str:
    """What the engine's summaries say it undid (the rotation, folded gains), abbreviated."""
    text = " ".join(str(c.get("summary") or "") for c in checks.values())
    out = []
    m = ROTATED.search(text)
    if m:
        out.append(f"rot {float(m.group(1)):.2g}")
    if "norm gains are folded" in text:
        out.append("fold")
    return ", ".join(out) or "·"


def _row(r: dict[str, Any], present: set[str]) -> str:
    checks = r.get("checks", {})
    verdict = r["verdict"]
    ok = (verdict == "derived") == (r["expected"] == "derived")
    mark = verdict if ok else f"**{verdict}** ✗"
    cells = [cell(checks.get(n), n in present) for n in DECISIVE]
    return (f"| {r['transform']} | {r['composition']} | {_diff(r)} | "
            + " | ".join(cells) + f" | {undone(checks)} | {_score(checks.get('attention_std'))}"
            f" | {mark} | {r['seconds']:.1f} |")


def _table(records: Iterable[dict[str, Any]]) -> list[str]:
    records = list(records)
    present = {n for r in records for n in r.get("checks", {})}
    head = ("| transform | with | Δlogit | " + " | ".join(ABBREV[n] for n in DECISIVE)
            + " | undone | std r | verdict | s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    lines += [_row(r, present) for r in records]
    return lines


def _firing(r: dict[str, Any]) -> str:
    names = [n for n, c in r.get("checks", {}).items()
             if c.get("strength") == "decisive" and c.get("indicates_derivation")]
    return ", ".join(names) or "none"


def write_report(path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
    order = {t: i for i, t in enumerate(dict.fromkeys(r["transform"] for r in records))}
    comps = {c: i for i, c in enumerate(COMPOSITIONS)}
    records = sorted(records, key=lambda r: (order[r["transform"]],
                                             comps.get(r.get("composition", ""), -1)))
    main = [r for r in records if "verdict" in r and "control" not in r]
    controls = [r for r in records if "control" in r]
    na = [r for r in records if "not_applicable" in r]
    missed = [r for r in main if r["verdict"] != "derived"]
    false_pos = [r for r in controls if r["verdict"] == "derived"]
    out = ["# Disguise benchmark: results", "",
           f"Generated by `python -m benchmarks.disguise.run{' --quick' if meta['quick'] else ''}`"
           f" (profile `{meta['profile']}`) on commit "
           + (", ".join(f"`{r['commit']}` ({Path(r['dir']).name}, {r['seconds']:.0f} s)"
                        for r in meta["runs"]) if meta.get("runs") else f"`{meta['commit']}`")
           + (f" with uncommitted changes in src/ ({len(meta['uncommitted_src'])} files: "
              "another engineer's work in progress)" if meta["uncommitted_src"] else "")
           + f"; {meta['seconds']:.0f} s in all.", "",
           f"**{len(main) - len(missed)} of {len(main)}** disguised derivatives are called "
           f"derived; **{len(false_pos)} of {len(controls)}** independent control pairs are "
           "called derived.", "", LEGEND, ""]
    for base in dict.fromkeys(r["base"] for r in main):
        out += [f"## {base}", ""]
        out += _table(r for r in main if r["base"] == base)
        out += [""]
        for r in na:
            if r["base"] == base:
                what = f"`{r['transform']}`" + (f" + {r['composition']}"
                                                 if r.get("composition") else "")
                out.append(f"- {what} does not apply: {r['not_applicable']}.")
        out.append("")
    if controls:
        out += ["## Independent controls (disguise of one base vs an independent base of the "
                "same shape)", ""]
        out += _table(controls)
        out.append("")
    out += ["## Not detected", ""]
    if not missed:
        out.append("Every disguised derivative is called derived.")
    for r in missed:
        out.append(f"- {r['base']} `{r['transform']}` + {r['composition']}: "
                   f"**{r['verdict']}** (decisive checks indicating derivation: "
                   f"{_firing(r)}). Reason: {r['verdict_reason']}")
    path.write_text("\n".join(out) + "\n")
