"""License and origin evidence from a model repository's files (check 4, ``license``).

The fingerprinter calls :func:`scan_repository` and stores its result as
``Fingerprint.documents``; the ``license`` check reads it. Known model licenses are recognised
by their content through compact shingle signatures (``data/signatures.json``, built by
:mod:`modelprint.license.build_signatures`); no license text ships with modelprint.

Carrying another vendor's license or copyright shows reuse of *files or code*, which is not the
same as reuse of *weights*: Huawei's Pangu code carried Qwen copyright headers because it
reused Qwen's modelling code under its license, which says nothing about the weights.

The scanner (and with it ``yaml`` and the audit-spec loader its model-card parser uses) is
imported on first use: the ``license`` check only reads a scan stored in a fingerprint, and
importing the scanner was ~25 ms of every warm ``compare``.
"""

from __future__ import annotations

from typing import Any

from modelprint.license.vendors import canonical_vendor, vendor_name

__all__ = ["FORMAT", "canonical_vendor", "scan_repository", "vendor_name"]


def __getattr__(name: str) -> Any:
    if name in ("FORMAT", "scan_repository"):
        from modelprint.license import scan

        return getattr(scan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
