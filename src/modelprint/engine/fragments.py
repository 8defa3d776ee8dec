"""Pieces of pairs from several processes (pytest-xdist) assembled into pair results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelprint.checks.base import Evidence
from modelprint.engine.outcomes import DEFAULT_ALPHA, FAILED, decide, pair_outcome


def evidence_from_json(data: Mapping[str, Any]) -> Evidence:
    known = Evidence.__dataclass_fields__
    return Evidence(**{k: v for k, v in data.items() if k in known})


def merge_fragments(fragments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Assemble pair results from the items that ran, wherever they ran.

    Each test item reports a fragment: ``{"key", "order", "header", "check", "result"}`` for
    a check item, ``{"key", "order", "pair"}`` for a verdict item (the full pair), and
    ``{"key", "order", "header", "check", "error"}`` for an item that raised. When the verdict
    item did not run (deselected with ``-k``, or the run stopped early) the verdict is decided
    here from the checks that did run, and the reason says so.
    """
    pairs: dict[str, dict[str, Any]] = {}
    order: dict[str, tuple[Any, ...]] = {}
    has_verdict: set[str] = set()
    for frag in fragments:
        key = frag["key"]
        order.setdefault(key, tuple(frag.get("order") or ()))
        if "pair" in frag:
            full = dict(frag["pair"])
            previous = pairs.get(key, {})
            full["checks"] = {**previous.get("checks", {}), **full.get("checks", {})}
            full["errors"] = previous.get("errors", []) + full.get("errors", [])
            pairs[key] = full
            has_verdict.add(key)
            continue
        pair = pairs.setdefault(key, {**frag.get("header", {}), "checks": {}, "errors": []})
        if "error" in frag:
            pair.setdefault("errors", []).append({"item": frag.get("check"),
                                                  "error": frag["error"]})
            if frag.get("check") not in (None, "verdict"):
                pair["checks"].setdefault(frag["check"], {
                    "check": frag["check"], "applicable": False, "indicates_derivation": None,
                    "score": None, "threshold": None, "p_value": None, "details": {},
                    "summary": f"error: {frag['error']}", "reason": frag["error"],
                    "error": frag["error"], "outcome": FAILED})
        elif frag.get("check") is not None and frag.get("result") is not None:
            pair["checks"][frag["check"]] = frag["result"]
    from modelprint.checks import check_names

    rank = {name: i for i, name in enumerate(check_names())}
    out = []
    for key in sorted(pairs, key=lambda k: order[k]):
        pair = pairs[key]
        pair["checks"] = dict(sorted(pair["checks"].items(),
                                     key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        if key not in has_verdict:
            ran = {n: evidence_from_json(c) for n, c in pair["checks"].items()
                   if "error" not in c}
            if ran:
                verdict, reason = decide(ran, float(pair.get("alpha") or DEFAULT_ALPHA),
                                         int(pair.get("tests") or 1))
                pair["verdict"] = verdict
                pair["verdict_reason"] = (f"partial run (verdict item not run; from "
                                          f"{', '.join(ran)} only): {reason}")
            else:
                pair["verdict"], pair["verdict_reason"] = "inconclusive", "no check ran"
        if not pair.get("errors"):
            pair.pop("errors", None)
        pair["outcome"] = pair_outcome(pair) if pair.get("expect") else None
        out.append(pair)
    return out
