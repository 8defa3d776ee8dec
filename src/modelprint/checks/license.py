"""license — another vendor's license, copyright or base-model claim in the candidate's files.

The seed's fourth check: look through the candidate's repository files (LICENSE, NOTICE,
model card, ``*.py`` headers, config.json) and its GGUF metadata for license texts, copyright
lines and claims (``base_model:``) that belong to a vendor other than the one the candidate says
it comes from. The scan itself is :func:`modelprint.license.scan_repository`, stored in the
fingerprint as ``documents``; this module only reads it.

Decision: ``indicates_derivation`` is True when the candidate carries the *reference's* vendor
license (recognised by content with similarity ≥ ``threshold``, or named by title / id),
copyright (other than the ``transformers`` boilerplate of Hugging Face), or names the
reference (or its vendor) as base model or source; False when the candidate's files were
scanned and nothing of the sort was found; None (no information) when both come from the same
vendor or the reference's vendor is unknown, unless the candidate names the reference itself.

It is a ``context`` check and never decides the verdict: carrying a license or copyright header
shows reuse of *files or code*, which is not reuse of *weights*. Huawei's Pangu modelling code
carried Qwen copyright headers because it reused Qwen's code under its license (Noah's Ark
said so), which says nothing about where the weights came from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelprint.checks.base import CONTEXT, Evidence, ModelView
from modelprint.license import identity as ident
from modelprint.license.vendors import is_tooling, vendor_name

#: Finding kinds that are identity claims or mere context, never evidence of reuse.
_NOT_EVIDENCE = ("organization", "architecture")
_TEXT_KINDS = ("license_text", "license_excerpt")
#: Findings listed in the details at most (the report shows them all; a terminal does not).
MAX_LISTED = 200


class License:
    name: ClassVar[str] = "license"
    strength: ClassVar[str] = CONTEXT
    default_options: ClassVar[dict[str, Any]] = {
        #: The vendor the candidate says it is from; "" = from its GGUF general.organization /
        #: general.author or the organisation of its hf: reference.
        "claimed_vendor": "",
        #: The reference's vendor; "" = from its identity claims, licenses or copyright lines.
        "reference_vendor": "",
        #: Least similarity (hit fraction of hashed 5-word shingles over the matched region)
        #: for a license text to count. Re-wrapped or re-cased copies score ~1.0; 0.8 leaves
        #: room for edited copies while a different license of the same vendor family still
        #: matches its own signature best.
        "threshold": 0.8,
    }
    description: ClassVar[str] = (
        "Scans the candidate's repository files (LICENSE, NOTICE, model card, *.py headers, "
        "config.json) and GGUF metadata for license texts recognised by content, copyright "
        "lines and base_model claims that belong to a vendor other than the one the candidate "
        "claims, and flags those of the reference's vendor. Context only: license or code "
        "reuse is not weight reuse. Carrying another vendor's license or copyright shows that "
        "files or code were reused — Pangu's Qwen copyright headers were code reuse under "
        "Qwen's license (Noah's Ark said so), not proof that Pangu's weights came from Qwen."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        opts = {**self.default_options, **(options or {})}
        thr = float(opts["threshold"])
        fa, fb = a.fingerprint, b.fingerprint
        docs_a = fa.documents if isinstance(fa.documents, dict) else {}
        files = [f for f in docs_a.get("files") or [] if isinstance(f, dict)]
        scanned = sum(1 for f in files if f.get("scanned"))
        fnd = ident.findings(docs_a)
        if not docs_a:
            return Evidence.not_applicable(
                self.name, CONTEXT, "the candidate's repository files were not scanned "
                "(its fingerprint has no documents)", threshold=thr)
        if scanned == 0 and not fnd:
            why = ("the candidate has no repository files or metadata to scan" if not files
                   else f"none of the candidate's {len(files)} files is readable text")
            return Evidence.not_applicable(self.name, CONTEXT, why, threshold=thr)

        claimed = ident.vendor_of_option(opts["claimed_vendor"])
        claimed_src = "option claimed_vendor"
        if claimed is None:
            claimed, claimed_src = ident.claimed_vendor(docs_a, fa.model.reference)
        ref = ident.vendor_of_option(opts["reference_vendor"])
        ref_src = "option reference_vendor"
        if ref is None:
            ref, ref_src = ident.reference_vendor(fb.documents, fb.model.reference)
        ref_repos = ident.repo_ids(fb.model.reference, fb.documents)

        listed, links = [], []
        texts = {(f.get("file"), f.get("vendor")) for f in fnd if f.get("kind") in _TEXT_KINDS
                 and float(f.get("similarity") or 0) >= thr}
        for f in fnd:
            if f.get("kind") == "copyright" and f.get("in_license_text") \
                    and (f.get("file"), f.get("vendor")) in texts:
                continue  # the notice quoted inside a license text already listed
            entry = _assess(f, claimed, ref, ref_repos, thr)
            if entry is None:
                continue
            listed.append(entry)
            if entry["links_reference"]:
                links.append(entry)

        details: dict[str, Any] = {
            "claimed_vendor": claimed, "claimed_vendor_name": _vn(claimed),
            "claimed_vendor_source": claimed_src,
            "reference_vendor": ref, "reference_vendor_name": _vn(ref),
            "reference_vendor_source": ref_src, "reference_repos": sorted(ref_repos),
            "threshold": thr, "files": len(files), "scanned_files": scanned,
            "findings": listed[:MAX_LISTED], "findings_total": len(listed),
            "links": len(links),
            "caveat": "license or copyright reuse is code/file reuse, not weight reuse",
        }
        score = max((float(e["confidence"] or 0) for e in links), default=0.0)

        def ev(indicates: bool | None, summary: str, reason: str | None = None) -> Evidence:
            return Evidence(check=self.name, strength=CONTEXT, applicable=True, score=score,
                            threshold=thr, indicates_derivation=indicates, summary=summary,
                            reason=reason, details=details)

        exact = [e for e in links if e.get("names_reference")]
        if links and (exact or (ref is not None and ref != claimed)):
            return ev(True, _summary_links(links, ref, claimed))
        if ref is not None and ref == claimed:
            why = (f"candidate and reference both come from {_vn(ref)}; its license files "
                   "cannot tell the two apart")
            return ev(None, f"no information: {why}", why)
        if ref is None:
            foreign = [e for e in listed if e["foreign"]]
            why = ref_src + (f"; the candidate carries {len(foreign)} foreign item(s), see "
                             "details" if foreign else "")
            return ev(None, f"no information: {why}", why)
        foreign = [e for e in listed if e["foreign"]]
        extra = (f"; it does carry {len(foreign)} item(s) of other vendors "
                 f"({', '.join(sorted({e['vendor_name'] for e in foreign}))})" if foreign else "")
        parts = [f"{scanned} scanned file(s)"] if scanned else []
        if any(f.get("file") == "<metadata>" for f in fnd):
            parts.append("metadata")
        what = " and ".join(parts)
        return ev(False, f"nothing in the candidate's {what} points to {_vn(ref)}, the "
                         f"reference's vendor{extra}")


def _vn(vendor: str | None) -> str:
    return vendor_name(vendor) if vendor else "unknown"


def _assess(f: dict[str, Any], claimed: str | None, ref: str | None, ref_repos: set[str],
            thr: float) -> dict[str, Any] | None:
    """A finding as listed in the details, or None when it is not worth listing."""
    kind = str(f.get("kind") or "")
    vendor = f.get("vendor")
    if kind in _NOT_EVIDENCE:
        return None
    if kind in _TEXT_KINDS and float(f.get("similarity") or 0) < thr:
        return None
    value = str(f.get("value") or "")
    names_ref = bool(kind in ident.ORIGIN_KINDS and ref_repos
                     and ident.as_repo(value) in ref_repos)
    if vendor is None and not names_ref and kind not in ident.ORIGIN_KINDS:
        return None  # vendor-neutral license (Apache, MIT) or an unknown copyright holder
    foreign = vendor is not None and vendor != claimed
    tooling_only = kind == "copyright" and (vendor is None or is_tooling(vendor))
    links = names_ref or (foreign and vendor == ref and not tooling_only)
    if not foreign and not names_ref and kind not in ident.ORIGIN_KINDS:
        return None  # the candidate's own vendor: expected, not listed
    return {
        "kind": kind, "file": f.get("file"), "line": f.get("line"),
        "excerpt": f.get("excerpt") or "", "vendor": vendor, "vendor_name": _vn(vendor),
        "license": f.get("title") or f.get("license"), "confidence": f.get("confidence"),
        "similarity": f.get("similarity"), "foreign": foreign, "links_reference": links,
        "names_reference": names_ref, "where": ident.where(f),
    }


def _summary_links(links: list[dict[str, Any]], ref: str | None, claimed: str | None) -> str:
    first = sorted(links, key=lambda e: -(float(e["confidence"] or 0)))[:3]
    parts = []
    for e in first:
        what = {"copyright": "copyright line", "base_model": "base_model claim",
                "source": "source URL", "code_origin": "code reference"}.get(
            e["kind"], e["license"] or "license")
        parts.append(f"{what} at {e['where']}")
    who = f"{_vn(ref)}, the reference's vendor" if ref else "the reference"
    claim = f" (it claims {_vn(claimed)})" if claimed else ""
    more = f" and {len(links) - len(first)} more" if len(links) > len(first) else ""
    return (f"the candidate{claim} carries {len(links)} item(s) of {who}: "
            f"{'; '.join(parts)}{more} — evidence of file/code reuse, not of weight reuse")


CHECK = License()
