"""The audit engine: candidate and reference in, evidence, verdict and result JSON out.

The pytest plugin, ``modelprint compare`` and the benchmarks all call this package and hold no
logic of their own, so a pair gives the same numbers whichever way it is run. One idea a
module, the way pytest keeps each concern in its own ``_pytest/*.py``:

* ``targets``   -- a model reference and the directory it is relative to;
* ``session``   -- :class:`Engine`: loads each model once, computes each check once, shares the
  layer alignment between per-layer checks;
* ``pair``      -- :class:`Pair`: one comparison, its verdict, outcomes and JSON;
* ``outcomes``  -- what a check or verdict means for a test item (passed/failed/skipped);
* ``fragments`` -- pair results assembled from items that ran in several processes (xdist);
* ``results``   -- the run document and its JSON/HTML files;
* ``table``     -- the terminal table of evidence.
"""

from __future__ import annotations

from modelprint.engine.fragments import evidence_from_json, merge_fragments
from modelprint.engine.outcomes import (
    DEFAULT_ALPHA,
    FAILED,
    PASSED,
    SKIPPED,
    VERDICTS,
    Outcome,
    check_outcome,
    decide,
    pair_outcome,
    verdict_outcome,
)
from modelprint.engine.pair import Pair
from modelprint.engine.results import (
    RESULT_FORMAT,
    build_run,
    freeze,
    json_safe,
    write_html,
    write_json,
    write_outputs,
)
from modelprint.engine.session import LAYER_ALIGNER, Engine, count_decisive, merged_options
from modelprint.engine.table import evidence_table
from modelprint.engine.targets import Target

__all__ = [
    "DEFAULT_ALPHA", "FAILED", "LAYER_ALIGNER", "PASSED", "RESULT_FORMAT", "SKIPPED", "VERDICTS",
    "Engine", "Outcome", "Pair", "Target", "build_run", "check_outcome", "count_decisive",
    "decide", "evidence_from_json", "evidence_table", "freeze", "json_safe", "merge_fragments",
    "merged_options", "pair_outcome", "verdict_outcome", "write_html", "write_json",
    "write_outputs",
]
