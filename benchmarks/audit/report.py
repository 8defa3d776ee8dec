"""RESULTS.md from results.json (see bench.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_results(data: dict[str, Any], path: Path) -> None:
    path.write_text("# Audit benchmark\n\n(pending)\n")
