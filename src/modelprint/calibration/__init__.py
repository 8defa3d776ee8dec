"""Calibration: null panels of independent model pairs; empirical and model-based p-values.

See :mod:`modelprint.calibration.nulls` for the ``nulls.json`` format the lineage zoo writes.
"""

from __future__ import annotations

from modelprint.calibration.nulls import (
    CalibrationFileError,
    NullPanel,
    empirical_p,
    load_nulls,
    null_scores,
    parse_nulls,
    predictive_p,
    write_nulls,
)

__all__ = [
    "CalibrationFileError",
    "NullPanel",
    "empirical_p",
    "load_nulls",
    "null_scores",
    "parse_nulls",
    "predictive_p",
    "write_nulls",
]
