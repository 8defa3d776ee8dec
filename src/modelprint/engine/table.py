"""The text table of evidence (terminal: pytest failures and `modelprint compare`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"
    return str(value)


def evidence_table(checks: Mapping[str, Mapping[str, Any]], width: int | None = None) -> str:
    """Check, strength, score, threshold, p, indicates, summary: one line per check, cut to
    the terminal width (at least 100 columns)."""
    if width is None:
        import shutil

        width = max(100, shutil.get_terminal_size((120, 24)).columns)
    head = ("check", "strength", "score", "threshold", "p", "indicates", "summary")
    rows = [head] + [
        (name, str(c.get("strength", "")), _fmt(c.get("score")), _fmt(c.get("threshold")),
         _fmt(c.get("p_value")),
         _fmt(c.get("indicates_derivation")) if c.get("applicable", True) else "n/a",
         " ".join(str(c.get("summary") or "").split()))
        for name, c in checks.items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for r in rows:
        cells = [cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)]
        line = "  ".join([*cells, r[-1]])
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)
