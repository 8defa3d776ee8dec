"""``modelprint library add|build|list|info|remove|export|import|verify``: a folder of
reference fingerprints (``modelprint.library``; this module parses arguments and prints).

The folder is ``--library DIR``, else ``$MODELPRINT_LIBRARY``, else ``./modelprint-library``.
Exit status: 0 = done; 1 = ``verify`` found problems, or ``build`` recorded failed models;
2 = bad input (one line on stderr naming the file and the cause).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from modelprint.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "library", help="a library of reference fingerprints (add, build, list, ...)",
        description="Keep the fingerprints of many models in one folder that `modelprint "
                    "identify` screens a candidate against.")
    p.add_argument("--library", "-L", metavar="DIR", type=Path, default=None,
                   help="the library folder (default: $MODELPRINT_LIBRARY or "
                        "./modelprint-library)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("add", help="fingerprint models (in this process) and add them")
    a.add_argument("models", metavar="MODEL", nargs="+")
    a.add_argument("--name", metavar="N", help="entry name (one MODEL only)")
    a.add_argument("--replace", action="store_true", help="replace an entry of that name")
    a.add_argument("--offline", action="store_true", default=None)
    b = sub.add_parser("build", help="add every model of a LIST file, as Dask tasks")
    b.add_argument("list", metavar="LIST", type=Path,
                   help="one `MODEL [NAME]` a line (e.g. hf:ORG/NAME@REV)")
    b.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="a running Dask scheduler (default: an in-process LocalCluster)")
    b.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="LocalCluster worker processes (default: min(2, cores))")
    b.add_argument("--offline", action="store_true", default=None)
    b.add_argument("--no-progress", dest="progress", action="store_false")
    ls = sub.add_parser("list", help="the entries, one a line")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ls.add_argument("--failures", action="store_true", help="the models a build failed on")
    i = sub.add_parser("info", help="one entry in full")
    i.add_argument("name", metavar="NAME")
    r = sub.add_parser("remove", help="remove an entry (and objects no other entry uses)")
    r.add_argument("name", metavar="NAME", nargs="+")
    e = sub.add_parser("export", help="write the library (or some entries) as one archive")
    e.add_argument("file", metavar="FILE", type=Path, help="*.tar, or *.tar.gz compressed")
    e.add_argument("--name", dest="names", action="append", metavar="N",
                   help="export only this entry (repeatable)")
    im = sub.add_parser("import", help="add the entries of an archive")
    im.add_argument("file", metavar="FILE", type=Path)
    sub.add_parser("verify", help="check every object's hash, reference and count")


def _open(args: argparse.Namespace, create: bool = False) -> Any:
    from modelprint.library import ModelLibrary, default_dir

    return ModelLibrary(args.library or default_dir(), create=create)


def run(args: argparse.Namespace) -> int:
    action = args.action
    if getattr(args, "offline", None):
        os.environ["HF_HUB_OFFLINE"] = "1"
    with _open(args, create=action in ("add", "build", "import")) as lib:
        return int(_ACTIONS[action](lib, args))


def _add(lib: Any, args: argparse.Namespace) -> int:
    from modelprint.library.core import default_name
    from modelprint.models import load_model

    if args.name is not None and len(args.models) != 1:
        raise InputError("--name", "names one model; give one MODEL with it")
    for ref in args.models:
        view = load_model(ref, Path.cwd(), offline=args.offline)
        stored = ref if ref.startswith("hf:") else str((Path.cwd() / ref).resolve())
        name = args.name or default_name(ref)
        got = lib.add(view.fingerprint, name=name, reference=stored, replace=args.replace)
        state = "added" if got.new else "already in the library"
        print(f"{got.name}  {state}  {got.stored_bytes / 1e6:.2f} MB  {got.digest[:16]}")
    return 0


def _build(lib: Any, args: argparse.Namespace) -> int:
    from modelprint.library.build import build, read_list

    jobs = read_list(args.list)
    report = build(lib, jobs, scheduler=args.scheduler, workers=max(1, args.workers),
                   offline=args.offline, progress=args.progress)
    print(f"{len(report.added)} added, {len(report.unchanged)} unchanged, "
          f"{len(report.skipped)} already there, {len(report.failed)} failed; "
          f"{report.bytes_read / 1e9:.2f} GB read in {report.seconds:.1f} s")
    for name, error in report.failed:
        print(f"failed  {name}: {error}")
    return 1 if report.failed else 0


def _list(lib: Any, args: argparse.Namespace) -> int:
    if args.failures:
        rows = lib.index.failures()
        if args.json:
            print(json.dumps([dict(zip(("reference", "name", "error", "at"), r, strict=True))
                              for r in rows], indent=1))
        for ref, name, error, at in [] if args.json else rows:
            print(f"{name or '-'}  {ref}  {at}  {error}")
        return 0
    entries = lib.entries()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=1))
        return 0
    for e in entries:
        shape = f"{e.family} L{e.num_layers} d{e.hidden_size}" + \
            (f" E{e.num_experts}" if e.num_experts else "")
        print(f"{e.name}  {shape}  {e.stored_bytes / 1e6:.2f} MB  {e.reference}"
              + (f"@{e.revision}" if e.revision else ""))
    print(f"{len(entries)} entries in {lib.root}", file=sys.stderr)
    return 0


def _info(lib: Any, args: argparse.Namespace) -> int:
    print(json.dumps(lib.entry(args.name).to_json(), indent=1))
    return 0


def _remove(lib: Any, args: argparse.Namespace) -> int:
    for name in args.name:
        lib.entry(name)  # every name checked before any is removed
    for name in args.name:
        old = lib.remove(name)
        print(f"removed {old.name} ({old.reference})")
    return 0


def _export(lib: Any, args: argparse.Namespace) -> int:
    from modelprint.library.archive import export

    n = export(lib, args.file, args.names)
    print(f"{n} entries -> {args.file} ({args.file.stat().st_size / 1e6:.1f} MB)")
    return 0


def _import(lib: Any, args: argparse.Namespace) -> int:
    from modelprint.library.archive import import_archive

    n = import_archive(lib, args.file)
    print(f"{n} entries added from {args.file}; {lib.index.count()} in {lib.root}")
    return 0


def _verify(lib: Any, args: argparse.Namespace) -> int:
    problems = lib.verify()
    for p in problems:
        print(p)
    print(f"{lib.index.count()} entries, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


_ACTIONS = {"add": _add, "build": _build, "list": _list, "info": _info, "remove": _remove,
            "export": _export, "import": _import, "verify": _verify}
