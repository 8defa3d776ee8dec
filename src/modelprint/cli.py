"""The ``modelprint`` console script: a thin dispatcher over ``modelprint.commands``.

Each verb lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``.
Errors a user can cause (:class:`~modelprint.errors.InputError`) print one line on stderr and
exit 2 -- never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from modelprint import __version__
from modelprint.errors import InputError, ModelprintError

#: verb -> module under modelprint.commands
VERBS = ("fingerprint", "compare", "decompose", "library", "identify")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelprint",
        description="Audit whether one model was derived from another, from its weights.",
    )
    parser.add_argument("--version", action="version", version=f"modelprint {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"modelprint.commands.{verb}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(f"modelprint.commands.{args.verb}").run(args))
    except InputError as exc:
        print(f"modelprint: error: {exc}", file=sys.stderr)
        return 2
    except ModelprintError as exc:
        print(f"modelprint: internal error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("modelprint: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
