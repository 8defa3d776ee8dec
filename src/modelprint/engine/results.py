"""The run document (result JSON of CONTRACT.md) and its files, JSON and HTML."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelprint import __version__
from modelprint._atomic import atomic_write_text

RESULT_FORMAT = "modelprint.result/1"


def build_run(pairs: list[dict[str, Any]], *, alpha: float, command: list[str]) -> dict[str, Any]:
    """The result JSON of CONTRACT.md around a list of pair dicts."""
    return {
        "format": RESULT_FORMAT,
        "modelprint_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "alpha": alpha,
        "pairs": pairs,
    }


def write_json(run: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically, so a reader (or an interrupted run) never leaves half a file."""
    return atomic_write_text(path, json.dumps(json_safe(run), indent=1, allow_nan=False) + "\n")


def write_html(run: Mapping[str, Any], path: str | Path) -> Path:
    """Render the HTML report (modelprint.report); raises ``RuntimeError`` with a readable
    message when the report module is not available."""
    try:
        from modelprint.report import write_report  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise RuntimeError(f"HTML report not written: modelprint.report is not available ({exc})"
                           ) from None
    return Path(write_report(dict(run), Path(path)))


def write_outputs(run: Mapping[str, Any], json_path: str | Path | None,
                  html_path: str | Path | None) -> None:
    """The ``--json`` / ``--html`` files of a CLI verb, each path printed; an HTML report that
    cannot be written is a warning on stderr, not a failure of the verb."""
    import sys

    if json_path:
        print(f"JSON: {write_json(run, json_path)}")
    if html_path:
        try:
            print(f"HTML: {write_html(run, html_path)}")
        except RuntimeError as exc:
            print(f"modelprint: {exc}", file=sys.stderr)


def json_safe(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars and arrays converted, NaN/Inf -> null): the
    result crosses process boundaries (pytest-xdist) and ends in strict JSON."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # also numpy.float64, a float subclass execnet cannot send
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return json_safe(tolist())
    return str(obj)


def freeze(options: Mapping[str, Any]) -> str:
    """A stable text key for a set of options."""
    return json.dumps(json_safe(dict(options)), sort_keys=True)
