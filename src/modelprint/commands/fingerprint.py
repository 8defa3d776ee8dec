"""``modelprint fingerprint MODEL [-o FILE]``: one pass over a model, a ``*.fp.json`` file and
a summary a person can check at a glance (family, shape, dtype, the std curve range of every
role, the weight files with their digests).

The fingerprint file then stands in for the model wherever a MODEL is accepted, e.g. to audit
against a reference whose weights cannot be shipped.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from modelprint.errors import InputError
from modelprint.fingerprint.model import Fingerprint
from modelprint.roles import CANONICAL_ROLES


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "fingerprint", help="fingerprint a model into a *.fp.json file",
        description="Read MODEL once (streaming, float64 statistics) and write its fingerprint.")
    p.add_argument("model", metavar="MODEL",
                   help="directory, .safetensors, .gguf, hf:ORG/NAME[@REV] or .fp.json")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write the fingerprint (default: ./<model name>.fp.json)")
    p.add_argument("--offline", action="store_true", default=None,
                   help="resolve hf: references from the local hub cache only")
    p.add_argument("--no-cache", dest="use_cache", action="store_false",
                   help="recompute even if this content was fingerprinted before")


def default_output(reference: str) -> Path:
    """``./<model name>.fp.json``: the hub repo name, the directory name or the file stem."""
    text = reference.strip().rstrip("/\\")
    if text.startswith("hf:"):
        name = text[3:].split("@", 1)[0].rsplit("/", 1)[-1]
    else:
        name = Path(text).name
        for suffix in (".fp.json", ".safetensors", ".gguf"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return Path.cwd() / f"{name}.fp.json"


def run(args: argparse.Namespace) -> int:
    from modelprint.models import load_model

    view = load_model(args.model, offline=args.offline, use_cache=args.use_cache,
                      progress=None)
    fp = view.fingerprint
    out = Path(args.output) if args.output else default_output(args.model)
    try:
        fp.save(out)
    except OSError as exc:
        raise InputError(out, f"cannot write the fingerprint: {exc.strerror or exc}") from None
    print_summary(fp, out, sys.stdout)
    return 0


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def print_summary(fp: Fingerprint, out: Path | None, stream: TextIO) -> None:
    a = fp.architecture
    w = stream.write
    w(f"model      {fp.model.reference}" + (f" @ {fp.model.revision}" if fp.model.revision
                                             else "") + "\n")
    family = a.family + (f" (model_type {a.model_type})" if a.model_type
                         and a.model_type != a.family else "")
    w(f"family     {family}\n")
    shape = (f"{a.num_layers} layers, hidden {a.hidden_size}, heads {a.num_heads} / "
             f"kv heads {a.num_kv_heads}, head_dim {a.head_dim}")
    if a.intermediate_size:
        shape += f", intermediate {a.intermediate_size}"
    if a.num_experts:
        shape += f", {a.num_experts} experts"
    w(f"shape      {shape}\n")
    dtypes = sorted({t.dtype for t in fp.tensors})
    w(f"dtype      {a.dtype or '?'}" + (f" (stored: {', '.join(dtypes)})" if dtypes else "")
      + "\n")
    w("std curves per role: min - max over layers (layers present)\n")
    order = {r: i for i, r in enumerate(CANONICAL_ROLES)}
    for role in sorted(fp.curves, key=lambda r: (order.get(r, len(order)), r)):
        curve = [v for v in fp.curves[role].get("std", []) if v is not None]
        if not curve:
            continue
        w(f"  {role:<18} {_fmt(min(curve)):>10} - {_fmt(max(curve)):<10} ({len(curve)})\n")
    w("files\n")
    for name, digest in sorted(fp.model.files.items()):
        w(f"  {name}  sha256 {digest[:16]}\n")
    if out is not None:
        w(f"written    {out}\n")
