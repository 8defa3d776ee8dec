"""Compact samples of a model's weights that let alignment-aware checks run on a fingerprint
alone (a ``*.fp.json`` reference has no weights). Filled in by the decisive checks' work."""

from __future__ import annotations

from typing import Any


def compute_sketches(source: Any, arch: Any, slots: Any) -> dict[str, Any]:
    """Sketches for one model; the fingerprint builder stores the result as ``sketches``."""
    return {}
