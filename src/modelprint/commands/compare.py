"""``modelprint compare CANDIDATE REFERENCE``: every applicable check for one pair, on the same
engine as the pytest plugin.

Exit status (CONTRACT.md): 0 = no evidence of derivation, 1 = evidence of derivation (the
verdict is ``derived``), 2 = bad input (one line on stderr naming the file and the cause).
An ``inconclusive`` verdict exits 0: it is not evidence of derivation, and the printed reason
says what is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from modelprint.engine import (
    DEFAULT_ALPHA,
    Engine,
    Target,
    build_run,
    evidence_table,
    write_outputs,
)
from modelprint.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare", help="compare a candidate model with a reference",
        description="Run every applicable check for one (candidate, reference) pair. "
                    "Exit 0: no evidence of derivation; 1: evidence of derivation; "
                    "2: bad input.")
    p.add_argument("candidate", metavar="CANDIDATE", help="MODEL reference of the candidate")
    p.add_argument("reference", metavar="REFERENCE", help="MODEL reference to compare with")
    p.add_argument("--json", metavar="FILE", type=Path, help="write the result JSON here")
    p.add_argument("--html", metavar="FILE", type=Path, help="write the HTML report here")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never contact the Hugging Face hub")
    p.add_argument("--alpha", type=_alpha, default=DEFAULT_ALPHA,
                   help=f"significance level of the verdict (default {DEFAULT_ALPHA:g})")
    p.add_argument("--check", dest="checks", action="append", metavar="NAME",
                   help="run only this check (repeatable; default: every check)")


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    engine = Engine(offline=args.offline)
    checks: dict[str, dict[str, Any]] | None = None
    if args.checks:
        unknown = [c for c in args.checks if c not in engine.registry]
        if unknown:
            raise InputError("--check", f"unknown check {unknown[0]!r} "
                                        f"(known: {', '.join(engine.registry)})")
        checks = {c: {} for c in args.checks}
    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    cwd = Path.cwd()
    pair = engine.pair(Target(args.candidate, cwd), Target(args.reference, cwd),
                       checks=checks, alpha=args.alpha)
    # bad input surfaces here, before any check runs; the reference is fingerprinted in a
    # second process meanwhile when it is not cached yet
    engine.preload(pair.candidate, pair.reference)
    result = pair.to_json()
    print(f"candidate: {args.candidate}")
    print(f"reference: {args.reference}")
    print()
    print(evidence_table(result["checks"]))
    print()
    print(f"verdict: {result['verdict']} -- {result['verdict_reason']}")
    run_doc = build_run([result], alpha=args.alpha, command=["modelprint", *sys.argv[1:]])
    write_outputs(run_doc, args.json, args.html)
    return 1 if result["verdict"] == "derived" else 0
