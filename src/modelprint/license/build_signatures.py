"""Build ``data/signatures.json`` from real license texts (run by a maintainer, not at runtime).

    python -m modelprint.license.build_signatures [--sources tests/data/licenses] [--out PATH]

The sources are the license texts under ``tests/data/licenses/`` (their origin is listed in
the README there). Only hashes leave this script: per license the sampled shingle hashes and
up to :data:`MAX_DISTINCT` hashes found in no other known license. Short copyright notice lines
are dropped first, because they name a holder, not the license (``Copyright (c) 2022 OpenAI``
above the MIT text), and holders are detected separately.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from modelprint.license.signatures import FORMAT
from modelprint.license.text import SAMPLE_MOD, SHINGLE_WORDS, read_text, sampled, shingles, words
from modelprint.license.vendors import copyright_holder

#: Cap on distinct hashes kept per license (the smallest hash values, so the choice is stable).
MAX_DISTINCT = 256

#: Opening shingles kept whole, to place the start of a match on the license's first line.
HEAD_SHINGLES = 16
#: A copyright line longer than this is a clause that quotes a notice (Llama's "You must
#: retain ... Copyright (c) Meta Platforms"), and part of the license text.
MAX_NOTICE_WORDS = 16

#: id, title, family, vendor, source file, optional first line / last line (substring match).
SOURCES: list[dict[str, Any]] = [
    dict(id="apache-2.0", title="Apache License 2.0", family="apache-2.0", vendor=None,
         file="apache-2.0.txt", end="END OF TERMS AND CONDITIONS"),
    dict(id="apache-2.0-notice", title="Apache License 2.0 (file notice)", family="apache-2.0",
         vendor=None, file="apache-2.0.txt", start="Licensed under the Apache License",
         end="limitations under the License."),
    dict(id="mit", title="MIT License", family="mit", vendor=None, file="qwen_NOTICE.txt",
         start="Permission is hereby granted"),
    dict(id="llama2", title="Llama 2 Community License Agreement", family="llama2",
         vendor="meta", file="llama2_community_license.txt"),
    dict(id="llama3", title="Meta Llama 3 Community License Agreement", family="llama3",
         vendor="meta", file="llama3_community_license.txt"),
    dict(id="llama3.1", title="Llama 3.1 Community License Agreement", family="llama3",
         vendor="meta", file="llama3_1_community_license.txt"),
    dict(id="llama3.2", title="Llama 3.2 Community License Agreement", family="llama3",
         vendor="meta", file="llama3_2_community_license.txt"),
    dict(id="tongyi-qianwen", title="Tongyi Qianwen License Agreement", family="qwen",
         vendor="alibaba", file="qwen_tongyi_qianwen_license.txt"),
    dict(id="tongyi-qianwen-research", title="Tongyi Qianwen Research License Agreement",
         family="qwen", vendor="alibaba", file="qwen_research_license.txt"),
    dict(id="gemma", title="Gemma Terms of Use", family="gemma", vendor="google",
         file="gemma_terms_of_use.txt"),
    dict(id="mrl", title="Mistral AI Research License", family="mistral-research",
         vendor="mistral", file="mistral_research_license.md"),
    dict(id="deepseek", title="DeepSeek License Agreement", family="deepseek",
         vendor="deepseek", file="deepseek_license_model.txt"),
]


def source_words(path: Path, start: str | None = None, end: str | None = None) -> list[str]:
    """Words of the selected part of a license file, copyright lines removed."""
    doc = read_text(path)
    if doc is None:
        raise SystemExit(f"{path}: not a text file")
    lines = [t for _, t in doc.lines]
    if start is not None:
        lines = lines[next(i for i, t in enumerate(lines) if start in t):]
    if end is not None:
        lines = lines[:next(i for i, t in enumerate(lines) if end in t) + 1]
    out: list[str] = []
    for t in lines:
        ws = words(t)
        if len(ws) > MAX_NOTICE_WORDS or copyright_holder(t) is None:
            out.extend(ws)
    return out


def build(sources_dir: Path) -> dict[str, Any]:
    hashes: dict[str, set[int]] = {}
    heads: dict[str, list[int]] = {}
    for spec in SOURCES:
        ws = source_words(sources_dir / spec["file"], spec.get("start"), spec.get("end"))
        seq = [h for _, h in shingles(ws)]
        hashes[spec["id"]] = set(seq)
        heads[spec["id"]] = sorted(set(seq[:HEAD_SHINGLES]))
    entries = []
    for spec in SOURCES:
        own = hashes[spec["id"]]
        others: set[int] = set()
        for k, h in hashes.items():
            if k != spec["id"] and not _same_text(k, spec["id"]):
                others |= h
        distinct = sorted(own - others)[:MAX_DISTINCT]
        entries.append({
            "id": spec["id"], "title": spec["title"], "family": spec["family"],
            "vendor": spec["vendor"], "source": spec["file"], "n_shingles": len(own),
            "sampled": sorted(h for h in own if sampled(h)), "distinct": distinct,
            "head": heads[spec["id"]],
        })
    return {"format": FORMAT, "shingle_words": SHINGLE_WORDS, "sample_mod": SAMPLE_MOD,
            "hash": "blake2b-32 of space-joined NFKC case-folded words", "licenses": entries}


#: Entries cut from the same text (a license and its file notice) never need separating, so
#: they do not remove each other's distinct hashes.
_SAME_TEXT = {frozenset({"apache-2.0", "apache-2.0-notice"})}


def _same_text(a: str, b: str) -> bool:
    return frozenset({a, b}) in _SAME_TEXT


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=Path,
                    default=here.parents[3] / "tests" / "data" / "licenses")
    ap.add_argument("--out", type=Path, default=here.parent / "data" / "signatures.json")
    args = ap.parse_args(argv)
    data = build(args.sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    for e in data["licenses"]:
        print(f"{e['id']:<26} shingles {e['n_shingles']:>5}  sampled {len(e['sampled']):>4}  "
              f"distinct {len(e['distinct']):>3}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
