"""``modelprint identify CANDIDATE --library DIR``: is the candidate derived from any model
of the library, and from which? (``modelprint.library.identify``; this module prints.)

Exit status as ``compare``: 0 = no library model is a parent (original, or inconclusive
with the reason), 1 = evidence of derivation from a library model (related, and not shown to
be the library model's own parent), 2 = bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelprint.commands.compare import _alpha
from modelprint.engine import DEFAULT_ALPHA, build_run, write_outputs
from modelprint.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "identify", help="screen a candidate against a library of known models",
        description="Rank every library entry by a disguise-surviving descriptor, run every "
                    "decisive check on the best K, and say which library models the "
                    "candidate derives from (Bonferroni over the whole library). Exit 0: no "
                    "library model is a parent; 1: evidence of derivation; 2: bad input.")
    p.add_argument("candidate", metavar="CANDIDATE", help="MODEL reference of the candidate")
    p.add_argument("--library", "-L", metavar="DIR", type=Path, default=None,
                   help="the library folder (default: $MODELPRINT_LIBRARY or "
                        "./modelprint-library)")
    p.add_argument("--top", type=int, default=10, metavar="K",
                   help="entries the decisive checks run on (default 10)")
    p.add_argument("--json", metavar="FILE", type=Path, help="write the result JSON here")
    p.add_argument("--html", metavar="FILE", type=Path, help="write the HTML report here")
    p.add_argument("--alpha", type=_alpha, default=DEFAULT_ALPHA,
                   help=f"family-wise level over the whole library (default {DEFAULT_ALPHA:g})")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never contact the Hugging Face hub")
    p.add_argument("--weights", action="store_true",
                   help="compare the best K on their weights where at hand (the folder an "
                        "entry was built from, or the local hub cache; tensor hashes must "
                        "match the entry): needed to see through a permuted or rotated "
                        "residual stream; never downloads")


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"


def table(ident: Any) -> str:
    head = ("rank", "entry", "prefilter", "verdict", "min p", "relation", "reason")
    rows = [head]
    for m in ident.matches:
        rel = "-"
        if m.related:
            rel = {"parent": "parent", "child": "child"}.get(m.relation or "", "unknown")
            if m.merge_weight is not None:
                rel += f" (merge {m.merge_weight})"
        rows.append((str(m.rank), m.name, "-" if m.prefilter is None else f"{m.prefilter:.4f}",
                     m.verdict, _fmt_p(m.p_value), rel, " ".join(m.reason.split())[:90]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)),
                                r[-1]]) for r in rows)


def run(args: argparse.Namespace) -> int:
    import os

    from modelprint.library import ModelLibrary, default_dir
    from modelprint.library.identify import identify

    if args.top < 1:
        raise InputError("--top", f"must be at least 1, not {args.top}")
    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    with ModelLibrary(args.library or default_dir()) as lib:
        ident = identify(args.candidate, lib, top=args.top, alpha=args.alpha,
                         offline=args.offline, weights=args.weights)
    print(f"candidate: {args.candidate}")
    print(f"library:   {ident.library} ({ident.entries} entries; verdicts at "
          f"alpha {ident.alpha:g} / {ident.n_tests} tests)")
    print()
    print(table(ident))
    print()
    print(f"verdict: {ident.verdict()} -- {ident.summary()}")
    doc = ident.to_json()
    run_doc = build_run([m.pair for m in ident.matches], alpha=args.alpha,
                        command=["modelprint", *sys.argv[1:]])
    run_doc["library"] = [{k: v for k, v in doc.items() if k != "matches"}
                          | {"matches": [{k: v for k, v in m.items() if k != "pair"}
                                         for m in doc["matches"]]}]
    write_outputs(run_doc, args.json, args.html)
    return 1 if ident.parents else 0
