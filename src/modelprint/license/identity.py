"""Whose model is it? Vendor identity from a scan's findings, for the ``license`` check.

Two different questions, answered from different evidence:

* the **candidate's claimed vendor** — only from what the candidate says about *itself*
  (``general.organization`` / ``general.author``, the organisation of an ``hf:ORG/NAME``
  reference). Never from its license files: a foreign license there is exactly what the check
  looks for, and inferring the vendor from it would explain it away.
* the **reference's vendor** — from its identity claims first, then from the vendor-specific
  licenses it carries (Gemma terms -> Google), then from its copyright lines.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from modelprint.license.vendors import canonical_vendor, is_tooling, vendors_in

_HF = re.compile(r"^hf:(?P<org>[\w.-]+)/(?P<name>[\w.-]+)")
_REPO_IN = re.compile(r"(?:huggingface\.co/|^hf:|^)(?P<repo>[\w.-]+/[\w.-]+)")
#: Finding kinds that carry a license (text, title, id).
LICENSE_KINDS = ("license_text", "license_excerpt", "license_mention", "spdx", "card_license",
                 "metadata_license")
#: Finding kinds that claim where the model came from.
ORIGIN_KINDS = ("base_model", "source", "code_origin")


def findings(documents: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(documents, dict):
        return []
    return [f for f in documents.get("findings") or [] if isinstance(f, dict)]


def hf_org(reference: str) -> str | None:
    m = _HF.match(reference or "")
    return m.group("org") if m else None


def repo_ids(reference: str, documents: dict[str, Any] | None) -> set[str]:
    """``org/name`` ids (lower case) a model is known by: its hf: reference, its GGUF source."""
    out = set()
    m = _HF.match(reference or "")
    if m:
        out.add(f"{m.group('org')}/{m.group('name')}".lower())
    for f in findings(documents):
        if f.get("kind") == "source":
            repo = as_repo(str(f.get("value") or ""))
            if repo:
                out.add(repo)
    return out


def as_repo(value: str) -> str | None:
    m = _REPO_IN.search(value.strip())
    return m.group("repo").lower().removesuffix(".git") if m else None


def claimed_vendor(documents: dict[str, Any] | None,
                   reference: str) -> tuple[str | None, str]:
    """(vendor, where it came from) for the candidate; (None, why) when it says nothing."""
    for f in findings(documents):
        if f.get("kind") == "organization" and f.get("vendor"):
            return str(f["vendor"]), f"{f.get('key', 'metadata')} = {f.get('value')}"
    org = hf_org(reference)
    if org:
        return canonical_vendor(org), f"organisation of the reference {reference}"
    return None, "the candidate names no organisation (set the option claimed_vendor)"


def reference_vendor(documents: dict[str, Any] | None,
                     reference: str) -> tuple[str | None, str]:
    """(vendor, where it came from) for the reference model."""
    claimed, source = claimed_vendor(documents, reference)
    if claimed:
        return claimed, source
    fs = findings(documents)
    for f in fs:
        if f.get("kind") in LICENSE_KINDS and f.get("vendor"):
            return str(f["vendor"]), f"its {f.get('title') or f.get('license')} ({where(f)})"
    counts = Counter(str(f["vendor"]) for f in fs
                     if f.get("kind") == "copyright" and f.get("vendor"))
    if counts:
        best = sorted(counts.items(), key=lambda kv: (is_tooling(kv[0]), -kv[1]))[0][0]
        return best, f"its copyright lines ({counts[best]} naming it)"
    return None, "the reference's vendor is unknown (set the option reference_vendor)"


def where(f: dict[str, Any]) -> str:
    file = f.get("file") or "?"
    if f.get("line") is not None:
        return f"{file}:{f['line']}"
    if f.get("key"):
        return f"{file} {f['key']}"
    return str(file)


def vendor_of_option(value: Any) -> str | None:
    """A vendor given in an audit's options, e.g. ``claimed_vendor: Huawei``."""
    if not value or not str(value).strip():
        return None
    return canonical_vendor(str(value))


def names_vendor(value: str, vendor: str) -> bool:
    return vendor in vendors_in(value)
