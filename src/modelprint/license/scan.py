"""Scan a model repository's non-weight files and metadata for license and origin evidence.

:func:`scan_repository` is what the fingerprinter calls; its result is stored as
``Fingerprint.documents`` so that a ``*.fp.json`` carries the evidence without the files.
Every file is treated as hostile: reads are capped, binary files are only listed, nothing is
executed or imported, decoding never fails, and the number of files and findings is bounded.

Result (JSON-able)::

    {"format": "modelprint.documents/1", "signatures": "<digest of the signature set>",
     "files": [{"path", "size", "sha256", "kind", "scanned", "note"}],
     "findings": [{"kind", "vendor", "license", "title", "file", "line", "excerpt",
                   "confidence", ...kind-specific fields}],
     "truncated": bool}

Finding kinds: ``license_text`` / ``license_excerpt`` (a known license recognised by content,
with ``similarity`` and ``coverage``), ``license_mention`` (a license title named in prose or a
code header), ``spdx``, ``copyright`` (with ``holder`` and ``vendors``), ``card_license``,
``base_model``, ``code_origin``, ``architecture`` (context only), and from GGUF metadata
``metadata_license``, ``organization``, ``source``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from modelprint.license.claims import card_findings, config_findings, metadata_findings
from modelprint.license.signatures import find_licenses, signatures_digest
from modelprint.license.text import read_text, sha256_file, words_with_lines
from modelprint.license.vendors import (
    copyright_holder,
    is_tooling,
    license_id_info,
    title_mentions,
    vendors_in,
)

FORMAT = "modelprint.documents/1"
MAX_FILES = 5000                      # listed
MAX_SCANNED = 1000                    # read and analysed
MAX_TOTAL_READ = 256 * 1024 * 1024    # bytes analysed over the whole repository
MAX_FINDINGS = 2000
MAX_PER_FILE = 50                     # findings of one kind in one file
MAX_EXCERPT = 200
#: Files never analysed as text: weights, tokenizer tables, archives, media.
_SKIP_SUFFIX = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle",
                ".npy", ".npz", ".onnx", ".msgpack", ".h5", ".tflite", ".model", ".tiktoken",
                ".zip", ".gz", ".tar", ".xz", ".zst", ".7z", ".png", ".jpg", ".jpeg", ".gif",
                ".webp", ".pdf", ".mp3", ".wav", ".mp4", ".pyc", ".so", ".dll", ".lock")
_SKIP_NAMES = {"tokenizer.json", "vocab.json", "vocab.txt", "merges.txt", "sha256sums",
               "record", ".gitattributes"}
_SPDX = re.compile(r"SPDX-License-Identifier:\s*(?P<expr>[\w.+\-() ]{1,120})", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def scan_repository(files: list[Path], metadata: dict[str, Any] | None,
                    root: Path | None) -> dict[str, Any]:
    """License texts, copyright lines and origin claims found in ``files`` and ``metadata``."""
    from modelprint.license.signatures import load_signatures

    sigs = load_signatures()
    entries: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    truncated = False
    budget = MAX_TOTAL_READ
    scanned = 0
    seen: set[str] = set()
    for path in sorted({Path(p) for p in files}, key=lambda p: _rel(p, root)):
        rel = _rel(path, root)
        if rel in seen:
            continue
        seen.add(rel)
        if len(entries) >= MAX_FILES:
            truncated = True
            break
        entry: dict[str, Any] = {"path": rel, "size": None, "sha256": None, "kind": None,
                                 "scanned": False, "note": None}
        entries.append(entry)
        try:
            note = _refuse(path)
            if note:
                entry["note"] = note
                continue
            size = path.stat().st_size
            entry["size"] = size
            if _skip(path):
                entry["kind"], entry["note"] = "data", "not text evidence (weights/tokenizer/media)"
                continue
            if scanned >= MAX_SCANNED or budget <= 0:
                entry["note"], truncated = "not read: scan limits reached", True
                continue
            entry["sha256"] = sha256_file(path, size)
            doc = read_text(path, rel)
            scanned += 1
            budget -= min(size, 2 * 1024 * 1024)
            if doc is None:
                entry["kind"], entry["note"] = "binary", "binary or undecodable: not analysed"
                continue
            entry["kind"], entry["scanned"] = doc.kind, True
            if doc.truncated:
                entry["note"] = "only the first 2 MiB analysed"
            if doc.replaced:
                entry["note"] = ((entry["note"] + "; ") if entry["note"] else "") + \
                    f"{doc.replaced} undecodable bytes replaced"
            for f in _analyse(rel, doc.lines, doc.text(), sigs):
                f["file"] = rel
                findings.append(f)
        except OSError as exc:
            entry["note"] = f"unreadable: {exc.strerror or type(exc).__name__}"
    for f in metadata_findings(metadata or {}):
        f["file"] = "<metadata>"
        findings.append(f)
    if len(findings) > MAX_FINDINGS:
        findings, truncated = findings[:MAX_FINDINGS], True
    for f in findings:
        f["excerpt"] = _clean(f.get("excerpt"))
    return {"format": FORMAT, "signatures": signatures_digest(), "files": entries,
            "findings": findings, "truncated": truncated}


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(os.path.relpath(path, root)).as_posix()
        except ValueError:
            pass
    return path.name


def _refuse(path: Path) -> str | None:
    """Why a path is not read. Keeping symbolic links inside the repository is the source's
    job (``sources._files.list_repo_files``): a hub snapshot's files are links into its blob
    store, outside the snapshot folder, and must be read."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    return None


def _skip(path: Path) -> bool:
    name = path.name.lower()
    return name in _SKIP_NAMES or name.endswith(_SKIP_SUFFIX)


def _clean(text: Any) -> str:
    """A short one-line raw excerpt: control characters dropped (terminals), length capped."""
    s = _CONTROL.sub("", str(text or "")).strip()
    return s if len(s) <= MAX_EXCERPT else s[:MAX_EXCERPT - 1] + "…"


def _analyse(rel: str, lines: list[tuple[int, str]], text: str,
             sigs: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    by_line = dict(lines)
    ws, where = words_with_lines(lines)
    regions: list[tuple[int, int]] = []
    for m in find_licenses(ws, sigs):
        first, last = where[m.start], where[min(m.stop, len(where)) - 1]
        regions.append((first, last))
        sig = m.signature
        out.append(dict(
            kind="license_text" if m.coverage >= 0.5 else "license_excerpt",
            vendor=sig.vendor, license=sig.id, title=sig.title, line=first, end_line=last,
            excerpt=_first_text(lines, first), similarity=round(m.similarity, 4),
            coverage=round(m.coverage, 4), confidence=round(m.similarity * min(1.0, m.hits / 40),
                                                            4),
            alternatives=m.alternatives,
        ))
    recognised = {f["vendor"] for f in out}
    n_copy = n_title = 0
    for num, line in lines:
        inside = any(a <= num <= b for a, b in regions)
        holder = copyright_holder(line)
        if holder and n_copy < MAX_PER_FILE:
            n_copy += 1
            named = vendors_in(holder)
            main = next((v for v in named if not is_tooling(v)), named[0] if named else None)
            out.append(dict(kind="copyright", vendor=main, vendors=named, holder=_clean(holder),
                            license=None, title=None, line=num, excerpt=line,
                            in_license_text=inside, confidence=0.8 if main else 0.3))
        spdx = _SPDX.search(line)
        if spdx:
            for lid in re.split(r"\s+(?:AND|OR|WITH)\s+|[()]", spdx.group("expr").strip()):
                if lid.strip():
                    vendor, title = license_id_info(lid)
                    out.append(dict(kind="spdx", vendor=vendor, license=lid.strip(), title=title,
                                    line=num, excerpt=line, confidence=0.8))
        if not inside and n_title < MAX_PER_FILE:
            for lid, title, vendor in title_mentions(line):
                if vendor is not None and vendor in recognised:
                    continue  # the text itself is already reported, a stronger finding
                n_title += 1
                out.append(dict(kind="license_mention", vendor=vendor, license=lid, title=title,
                                line=num, excerpt=line, confidence=0.5))
    name = rel.rsplit("/", 1)[-1].lower()
    if name.startswith("readme") or name.endswith((".md", ".markdown")):
        for f in card_findings(lines):
            if f.get("line") is not None and "excerpt" not in f:
                f["excerpt"] = by_line.get(f["line"], "")
            out.append(f)
    if name.endswith(".json") and "config" in name:
        out.extend(config_findings(text))
    return out


def _first_text(lines: list[tuple[int, str]], num: int) -> str:
    for n, t in lines:
        if n >= num and t.strip():
            return t
    return ""
