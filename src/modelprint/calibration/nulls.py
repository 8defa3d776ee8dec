"""Null panels: scores of *independent* model pairs, against which a pair's score is judged.

A raw similarity score means nothing without the scores unrelated models reach (unrelated
same-shape 7B models reach r ≈ 0.9 on the seed statistic). A null panel holds, for one check and
one statistic, the scores of pairs known to be independent; the empirical p-value of a score s is
``p = (1 + #{null ≥ s}) / (N + 1)`` — never below its floor ``1 / (N + 1)``.

File format (``src/modelprint/calibration/nulls.json``, shipped as package data; written by the
lineage zoo, ``benchmarks/lineage/``, with :func:`write_nulls`)::

    {
      "format": "modelprint.nulls/1",
      "created": "2026-01-31T12:00:00Z",          # ISO-8601, when the file was generated
      "generator": "benchmarks/lineage/...",       # the script that wrote it (free text)
      "note": "...",                                # optional free text
      "panels": {
        "<check name>": {                           # e.g. "attention_std"
          "<statistic>": {                          # e.g. "score", "r_detrended"
            "scores": [0.41, 0.12, ...],            # one float per independent pair
            "pairs": [["model-a", "model-b"], ...], # same length as scores: provenance
            "source": "lineage zoo: 12 independently initialised and trained ...",
            "method": "how the pairs were built (recipe, seeds, training steps, data)",
            "provisional": false                    # true = synthetic stand-in, not real models
          }
        }
      }
    }

Statistic names are chosen by each check and documented there (the seed checks use ``score``,
the value in ``Evidence.score``, and ``r_detrended``, the mean detrended r in
``Evidence.details``). The larger a statistic, the more similar the pair: empirical p-values
count null scores *at or above* the observed one. Non-finite numbers are not allowed.

Until the zoo has produced real independent pairs the shipped file holds no panels: the checks
then report ``p_value = null`` and say "not calibrated". No invented numbers are shipped.
A different file can be used by setting ``MODELPRINT_NULLS`` to its path (the zoo uses this to
test a freshly generated panel before committing it).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from modelprint._tails import t_sf
from modelprint.errors import InputError

FORMAT = "modelprint.nulls/1"
ENV_VAR = "MODELPRINT_NULLS"


class CalibrationFileError(InputError):
    """A null-panel file that is not in the format above."""


@dataclass(frozen=True)
class NullPanel:
    """Scores of independent pairs for one (check, statistic)."""

    check: str
    statistic: str
    scores: tuple[float, ...]
    pairs: tuple[tuple[str, str], ...]
    source: str
    method: str = ""
    provisional: bool = False

    @property
    def size(self) -> int:
        return len(self.scores)

    @property
    def floor(self) -> float:
        """Smallest p-value this panel can give: 1 / (N + 1)."""
        return 1.0 / (self.size + 1)

    def to_json(self) -> dict[str, Any]:
        """The form checks put into ``details["null"]`` (report charts read it)."""
        return {"scores": list(self.scores), "source": self.source, "method": self.method,
                "provisional": self.provisional, "n": self.size, "p_floor": self.floor,
                "pairs": [list(p) for p in self.pairs]}


def empirical_p(score: float, panel: NullPanel) -> float:
    """``(1 + #{null ≥ score}) / (N + 1)``: valid (never anti-conservative) for any N."""
    if not math.isfinite(score):
        raise ValueError(f"score {score!r} is not finite")
    hits = sum(1 for s in panel.scores if s >= score)
    return (1 + hits) / (panel.size + 1)


#: Smallest panel a model-based p-value is fitted to (mean and sd need a few points).
MIN_PREDICTIVE = 5


def predictive_p(score: float, panel: NullPanel, *, fisher_z: bool = False
                 ) -> tuple[float, float] | None:
    """One-sided p of ``score`` under a normal model of the panel, with the uncertainty of the
    panel's own mean and sd: the Student-t prediction p-value

        t = (x - mean) / (sd * sqrt(1 + 1/N)),   p = P(T_{N-1} >= t),

    where x and the panel are on the ``atanh`` scale when ``fisher_z`` (for correlation-like
    scores in (-1, 1), whose spread shrinks near 1). Unlike :func:`empirical_p` it can go
    below ``1/(N+1)``, which is what lets a panel of a few dozen independent pairs support
    a small family-wise level -- at the price of an assumption (approximately normal null
    on that scale) that the lineage benchmark checks on held-out independent pairs. Returns
    ``(t, p)``; None when the panel has fewer than ``MIN_PREDICTIVE`` scores or no spread."""
    if not math.isfinite(score):
        raise ValueError(f"score {score!r} is not finite")
    if panel.size < MIN_PREDICTIVE:
        return None

    def tr(v: float) -> float:
        return math.atanh(min(max(v, -1 + 1e-12), 1 - 1e-12)) if fisher_z else v

    xs = [tr(v) for v in panel.scores]
    n = len(xs)
    mean = math.fsum(xs) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in xs) / (n - 1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # rounding noise of equal scores is no spread
        return None
    t = (tr(score) - mean) / (sd * math.sqrt(1.0 + 1.0 / n))
    return t, max(t_sf(t, n - 1), 5e-324)


def default_path() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(str(resources.files("modelprint.calibration").joinpath("nulls.json")))


def null_scores(check: str, statistic: str, path: str | Path | None = None) -> NullPanel | None:
    """The null panel for ``check``/``statistic``, or None when none has been built."""
    panels = load_nulls(str(path) if path is not None else str(default_path()))
    return panels.get((check, statistic))


@cache
def load_nulls(path: str) -> dict[tuple[str, str], NullPanel]:
    """All panels of one file, keyed by (check, statistic). A missing file means no panels."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationFileError(p, f"not readable JSON ({exc})") from None
    return parse_nulls(data, where=str(p))


def parse_nulls(data: Any, where: str = "<nulls>") -> dict[tuple[str, str], NullPanel]:
    """Validate a null-panel document (see the module docstring) and index its panels."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CalibrationFileError(where, f"format {got!r} is not {FORMAT!r}")
    panels = data.get("panels", {})
    if not isinstance(panels, dict):
        raise CalibrationFileError(where, "'panels' must be an object")
    out: dict[tuple[str, str], NullPanel] = {}
    for check, by_stat in panels.items():
        if not isinstance(by_stat, dict):
            raise CalibrationFileError(where, f"panels.{check} must be an object")
        for stat, entry in by_stat.items():
            out[(check, stat)] = _panel(check, stat, entry, f"{where}: panels.{check}.{stat}")
    return out


def _panel(check: str, stat: str, entry: Any, where: str) -> NullPanel:
    if not isinstance(entry, dict):
        raise CalibrationFileError(where, "must be an object")
    scores = entry.get("scores")
    if (not isinstance(scores, list) or not scores
            or not all(_is_finite_number(s) for s in scores)):
        raise CalibrationFileError(where, "'scores' must be a non-empty list of finite numbers")
    pairs = entry.get("pairs")
    if (not isinstance(pairs, list) or len(pairs) != len(scores)
            or not all(isinstance(p, list) and len(p) == 2
                       and all(isinstance(n, str) for n in p) for p in pairs)):
        raise CalibrationFileError(
            where, "'pairs' must list one [model_a, model_b] name pair per score")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise CalibrationFileError(where, "'source' (provenance of the pairs) is required")
    method = entry.get("method", "")
    provisional = entry.get("provisional", False)
    if not isinstance(method, str) or not isinstance(provisional, bool):
        raise CalibrationFileError(where, "'method' must be a string, 'provisional' a boolean")
    return NullPanel(check=check, statistic=stat, scores=tuple(float(s) for s in scores),
                     pairs=tuple((str(p[0]), str(p[1])) for p in pairs),
                     source=source, method=method, provisional=provisional)


def _is_finite_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def write_nulls(panels: Sequence[NullPanel], path: str | Path, *, created: str,
                generator: str, note: str = "") -> Path:
    """Write panels in the shipped format (for the lineage zoo). Validates by re-parsing."""
    doc: dict[str, Any] = {"format": FORMAT, "created": created, "generator": generator}
    if note:
        doc["note"] = note
    body: dict[str, dict[str, Any]] = {}
    for p in panels:
        body.setdefault(p.check, {})[p.statistic] = {
            "scores": [float(s) for s in p.scores], "pairs": [list(x) for x in p.pairs],
            "source": p.source, "method": p.method, "provisional": p.provisional,
        }
    doc["panels"] = body
    parse_nulls(doc, where=str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    load_nulls.cache_clear()
    return path
