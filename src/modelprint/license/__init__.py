"""License and origin evidence from a model repository's files (check 4, ``license``).

The fingerprinter calls :func:`scan_repository` and stores its result as
``Fingerprint.documents``; the ``license`` check reads it. Known model licenses are recognised
by their content through compact shingle signatures (``data/signatures.json``, built by
:mod:`modelprint.license.build_signatures`); no license text ships with modelprint.

Carrying another vendor's license or copyright shows reuse of *files or code*, which is not the
same as reuse of *weights*: Huawei's Pangu code carried Qwen copyright headers because it
reused Qwen's modelling code under its license, which says nothing about the weights.
"""

from __future__ import annotations

from modelprint.license.scan import FORMAT, scan_repository
from modelprint.license.vendors import canonical_vendor, vendor_name

__all__ = ["FORMAT", "canonical_vendor", "scan_repository", "vendor_name"]
