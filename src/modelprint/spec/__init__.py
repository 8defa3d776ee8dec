"""Audit files (``*.audit.yaml``): a strict loader that reports problems as ``file:line``.

The format is in CONTRACT.md::

    candidate: ./models/my-release        # MODEL reference, relative to this file
    references:
      - model: hf:Qwen/Qwen2.5-14B@<sha>
        name: qwen2.5-14b                 # optional; used in test ids
    expect: independent                   # or: derived
    checks: {attention_std: {threshold: 0.95}}   # optional; default: every check
    alpha: 1e-6                           # optional significance level (before Bonferroni)
"""

from __future__ import annotations

from modelprint.spec.schema import AuditSpec, ModelSpec, default_name, load_audit

AUDIT_SUFFIXES = (".audit.yaml", ".audit.yml")


def is_audit_file(name: str) -> bool:
    """Whether a file name is an audit file by its suffix."""
    return name.endswith(AUDIT_SUFFIXES)


__all__ = ["AUDIT_SUFFIXES", "AuditSpec", "ModelSpec", "default_name", "is_audit_file",
           "load_audit"]
