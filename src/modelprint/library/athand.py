"""A library of what is at hand: the real models of MODELS.md and, in a checkout where it has
been built, the lineage zoo -- so a newcomer sees identify and the originality gate work
offline.

    python -m modelprint.library.athand at-hand.list     # write a LIST file
    modelprint library -L ./library build at-hand.list    # fingerprint them (Dask)

``make audit`` builds the same library (real models only) in-process for its example gate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modelprint import realmodels

#: name -> locator of the real models shipped on PyPI (shared/MODELS.md)
REAL = {"smollm2-135m": realmodels.smollm2_gguf, "gemma3-270m": realmodels.gemma3_gguf,
        "all-MiniLM-L6-v2": realmodels.minilm_dir}
ZOO_MANIFEST = Path("benchmarks/lineage/cache/full/manifest.json")


def lines(zoo_manifest: Path | None = ZOO_MANIFEST) -> list[str]:
    """``MODEL NAME`` lines: every real model, then every zoo model when the zoo exists."""
    out = [f"{locate()} {name}" for name, locate in REAL.items()]
    if zoo_manifest is not None and zoo_manifest.is_file():
        base = zoo_manifest.resolve().parent
        for name, m in json.loads(zoo_manifest.read_text())["models"].items():
            if m.get("kind") == "real":
                continue  # already listed under its own name
            path = Path(m["path"])
            out.append(f"{path if path.is_absolute() else (base / path).resolve()} zoo.{name}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m modelprint.library.athand LIST", file=sys.stderr)
        return 2
    text = "\n".join(lines()) + "\n"
    Path(args[0]).write_text(text, encoding="utf-8")
    print(f"{text.count(chr(10))} models -> {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
