"""``modelprint decompose CANDIDATE PARENT... [--base B]``: a merge's parents, weights and
method (``modelprint.merges``; this module only parses arguments and prints).

Exit status: 0 = decomposed (whatever the answer, including "no parent explains it"),
2 = bad input (one line on stderr naming the file and the cause).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from modelprint._atomic import atomic_write_text
from modelprint.engine import Engine, Target, json_safe
from modelprint.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decompose", help="decompose a merged model into its parents",
        description="Fit the candidate as a merge of the given parents (and base): mixture "
                    "weights with bootstrap intervals, per layer and per role, the merge "
                    "method it is most consistent with and the nearest mergekit recipe. "
                    "Exit 0: decomposed; 2: bad input.")
    p.add_argument("candidate", metavar="CANDIDATE", help="MODEL reference of the merge")
    p.add_argument("parents", metavar="PARENT", nargs="+", help="MODEL references of parents")
    p.add_argument("--base", metavar="B", help="base model the parents' task vectors are "
                   "taken from (task arithmetic, TIES, DARE)")
    p.add_argument("--json", metavar="FILE", type=Path, help="write the decomposition JSON")
    p.add_argument("--html", metavar="FILE", type=Path, help="write an HTML report")
    p.add_argument("--sketches", action="store_true",
                   help="use the fingerprints' sketches even when weights are at hand")
    p.add_argument("--verdicts", action="store_true",
                   help="also run the lineage checks for each (candidate, parent) pair and "
                        "show their verdict beside the fitted weight")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never contact the Hugging Face hub")


def run(args: argparse.Namespace) -> int:
    from modelprint.merges import decompose
    from modelprint.merges.report import text, write_html

    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    refs = [args.candidate, *args.parents, *([args.base] if args.base else [])]
    if len(set(refs)) != len(refs):
        raise InputError("decompose", "a model is given twice (candidate, parents and base "
                                      "must differ)")
    engine = Engine(offline=args.offline)
    cwd = Path.cwd()
    cand = engine.model(Target(args.candidate, cwd))
    parents = [engine.model(Target(p, cwd)) for p in args.parents]
    base = engine.model(Target(args.base, cwd)) if args.base else None
    d = decompose(cand, parents, base, names=args.parents, base_name=args.base,
                  candidate_name=args.candidate, use_weights=False if args.sketches else None)
    doc = d.to_json()
    print(text(d))
    if args.verdicts:
        doc["lineage_verdicts"] = _verdicts(engine, cwd, args, d)
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(doc), indent=1,
                                                allow_nan=False) + "\n")
        print(f"JSON: {args.json}")
    if args.html:
        print(f"HTML: {write_html(d, args.html)}")
    return 0


def _verdicts(engine: Engine, cwd: Path, args: argparse.Namespace, d: Any
              ) -> dict[str, dict[str, str]]:
    """The engine's lineage verdict per parent: an independent verdict and a weight
    indistinguishable from 0 agree that a model is not a parent; a derived verdict with
    weight 0 means related (a sibling, the base) but not mixed in."""
    out: dict[str, dict[str, str]] = {}
    print()
    for ref, pw in zip(args.parents, d.parents, strict=True):
        verdict, reason = engine.pair(Target(args.candidate, cwd), Target(ref, cwd)).verdict()
        out[ref] = {"verdict": verdict, "reason": reason}
        print(f"lineage verdict vs {ref}: {verdict} (weight {pw.weight}, "
              f"{'parent' if pw.is_parent else 'not a parent'})")
    return out
