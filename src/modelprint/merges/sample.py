"""Aligned samples of the same weight positions in the candidate, its parents and the base.

A merge acts position by position on same-shape tensors, so every statistic of the
decomposition is computed on values taken at *the same* positions of each model. Positions
are a pure function of the slot's shape (``fingerprint.sketches.positions``), so the sample
of a model read from its weights and the 64 x 64 sketch in its fingerprint overlap, and a
fingerprint-only parent can stand in for its weights (less precisely: fewer positions, and
float16 values).

Raw stored values are compared, not the canonical (norm-folded) form the lineage checks use:
mergekit merges stored tensors, and folding ``W diag(g)`` is not linear in the pair
``(W, g)``, so a linear merge of folded weights is not the fold of the linear merge.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from modelprint.checks.base import ModelView
from modelprint.fingerprint.sketches import decode, positions

#: Rows and columns sampled per matrix slot when every model's weights are at hand: ~49k
#: positions a slot (a 64 x 64 sketch holds 4096).
WEIGHT_ROWS = 96
WEIGHT_COLS = 512

#: Mantissa bits of the stored precision, for "is this value exactly the base's?" questions.
MANTISSA_BITS = {"float32": 23, "float16": 10, "bfloat16": 7}


@dataclass(frozen=True)
class SlotSample:
    """One tensor slot sampled at the same positions in every model.

    ``models`` stacks the regressors (parents in the order given, then the base when given),
    shape (k, rows, cols); ``y`` is the candidate (rows, cols); float32 as stored (float16
    sketches are exact in float32). ``precision`` names the
    coarsest stored precision of the values (float16 for fingerprint sketches).
    """

    role: str
    layer: int | None
    expert: int | None
    shape: tuple[int, int]
    y: np.ndarray
    models: np.ndarray
    precision: str

    @property
    def key(self) -> str:
        return f"{self.role}|{'-' if self.layer is None else self.layer}"


def _slots(view: ModelView) -> dict[tuple[str, int | None, int | None], tuple[int, int]]:
    out: dict[tuple[str, int | None, int | None], tuple[int, int]] = {}
    for key, entry in ((view.fingerprint.sketches or {}).get("matrix") or {}).items():
        role, layer, expert = key.split("|")
        out[(role, None if layer == "-" else int(layer),
             None if expert == "-" else int(expert))] = (int(entry["shape"][0]),
                                                        int(entry["shape"][1]))
    return out


def _sketch(view: ModelView, slot: tuple[str, int | None, int | None]) -> np.ndarray:
    role, layer, expert = slot
    key = f"{role}|{'-' if layer is None else layer}|{'-' if expert is None else expert}"
    return decode(view.fingerprint.sketches["matrix"][key])


def _precision(values: np.ndarray) -> str:
    """The narrowest float format every value of a float32 sample is exactly representable in
    (a bf16 checkpoint read as float32 has its low 16 bits zero)."""
    v = np.ascontiguousarray(values, dtype=np.float32)
    bits = v.view(np.uint32)
    if not np.any(bits & np.uint32(0xFFFF)):
        return "bfloat16"
    if np.any(bits & np.uint32(0x1FFF)):   # more mantissa bits than float16 keeps
        return "float32"
    if np.array_equal(v.astype(np.float16).astype(np.float32), v):
        return "float16"
    return "float32"


def source(candidate: ModelView, models: Sequence[ModelView],
           use_weights: bool | None = None) -> str:
    """"weights" when every model's weights are at hand (and wanted), else "sketches"."""
    have = all(m.weights is not None for m in [candidate, *models])
    return "weights" if (have if use_weights is None else (use_weights and have)) else "sketches"


def iter_samples(candidate: ModelView, models: Sequence[ModelView], *, use_weights: bool,
                 rows: int = WEIGHT_ROWS, cols: int = WEIGHT_COLS) -> Iterator[SlotSample]:
    """Every matrix slot the candidate shares (same role, layer, expert and shape) with all
    ``models`` (parents, then the base), one at a time so memory holds one slot."""
    weights = use_weights
    common = _slots(candidate)
    for m in models:
        other = _slots(m)
        common = {k: s for k, s in common.items() if other.get(k) == s}
    for slot, shape in sorted(common.items(), key=lambda kv: (kv[0][1] is not None,
                                                             kv[0][1] or 0, kv[0][0])):
        role, layer, expert = slot
        if weights:
            r_idx, c_idx = positions(shape, rows, cols)
            mats = [m.weights.rows(role, layer, r_idx, expert, cols=c_idx)  # type: ignore[union-attr]
                    for m in [candidate, *models]]
            if any(x is None for x in mats):
                continue
            arrays = [np.asarray(x, dtype=np.float32) for x in mats]
            precision = min((_precision(a) for a in arrays), key=lambda p: MANTISSA_BITS[p])
            stacked = np.stack(arrays)
        else:
            stacked = np.stack([_sketch(m, slot) for m in [candidate, *models]]
                               ).astype(np.float32)
            precision = "float16"
        yield SlotSample(role, layer, expert, shape, stacked[0], stacked[1:], precision)
