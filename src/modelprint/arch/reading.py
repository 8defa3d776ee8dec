"""Reading a role's values: blocks for statistics, or a float32 HF-layout array for checks.

:func:`iter_slot_blocks` never holds more than one row block of the stored tensor (plus, for
a stacked GGUF expert, that expert's matrix), so memory stays flat whatever the model size.
Blocks keep the stored float dtype (float16, bfloat16, float32...; quantised GGUF data comes
dequantised from the source) because no arithmetic is needed to select rows or columns; exact
float64 moments of 16-bit data are then a histogram of bit patterns away.

Every block is a piece of the slot's HF-layout matrix: a run of its rows, or -- for transposed
(Conv1D) storage -- a run of its columns given as a transposed view. Their concatenation in the
right axis is the slot's tensor; statistics that ignore order can simply pool them.

Norm values are returned as stored: for HF Gemma the effective scale is ``1 + w``
(:attr:`ArchInfo.norm_offset`); callers add the offset when they need the effective value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..sources.base import BLOCK_BYTES, ModelSource
from .base import RoleSlot


def _is_stacked(source: ModelSource, slot: RoleSlot) -> bool:
    return slot.expert is not None and len(source.tensors()[slot.tensor].shape) == 3


def _row_step(source: ModelSource, name: str, block_bytes: int) -> int:
    info = source.tensors()[name]
    per_row = max(1, info.numel // max(info.rows, 1)) * 4
    return max(1, block_bytes // per_row)


def _ranges(slot: RoleSlot, rows: int) -> tuple[tuple[int, int], ...]:
    return slot.row_ranges if slot.row_ranges is not None else ((0, rows),)


def iter_slot_blocks(source: ModelSource, slot: RoleSlot,
                     block_bytes: int = BLOCK_BYTES) -> Iterator[np.ndarray]:
    """The slot's values in blocks (stored dtype; see module doc for the layout)."""
    info = source.tensors()[slot.tensor]
    if _is_stacked(source, slot):
        assert slot.expert is not None
        mat = source.read_rows(slot.tensor, slot.expert, slot.expert + 1)[0]
        for a, b in _ranges(slot, mat.shape[0]):
            yield mat[a:b]
        return
    if len(info.shape) <= 1 or not slot.transpose:
        step = _row_step(source, slot.tensor, block_bytes)
        for a, b in _ranges(slot, info.rows):
            for start in range(a, b, step):
                yield source.read_rows(slot.tensor, start, min(b, start + step))
        return
    # Transposed storage: HF rows are stored columns; read stored row blocks, slice columns.
    for start, block in source.iter_row_blocks(slot.tensor, block_bytes):
        del start
        for a, b in _ranges(slot, info.shape[1]):
            yield block[:, a:b].T


def _hf_row_index(slot: RoleSlot, rows: int, select: Sequence[int] | np.ndarray | None
                  ) -> np.ndarray:
    """Indices into the stored axis for the slot's HF rows (optionally a subset of them)."""
    idx = np.concatenate([np.arange(a, b) for a, b in _ranges(slot, rows)])
    if select is None:
        return idx
    sel = np.asarray(select, dtype=np.int64)
    if sel.size and (sel.min() < -len(idx) or sel.max() >= len(idx)):
        raise IndexError(f"row index out of range for {slot.role} ({len(idx)} rows)")
    return idx[sel]


def _read_index(source: ModelSource, name: str, idx: np.ndarray,
                cols: np.ndarray | None = None) -> np.ndarray:
    """Rows ``idx`` (any order) of a stored tensor (the source reads them as it reads best),
    float32; ``cols`` keeps only those columns, taken before the float32 conversion (a 256-of-
    4096 column subset of a BF16 matrix: ~6x less time than converting it whole)."""
    if idx.size == 0:
        shape = source.tensors()[name].shape
        width = len(cols) if cols is not None else None
        return np.zeros((0, *([width] if width is not None else shape[1:])), dtype=np.float32)

    def finish(data: np.ndarray) -> np.ndarray:
        if cols is not None:
            data = np.take(data, cols, axis=1)  # ~4x faster than data[:, cols]
        return np.asarray(data, dtype=np.float32)

    first = int(idx[0])
    if np.array_equal(idx, np.arange(first, first + idx.size)):
        # one run (a whole matrix, most often): read it as a block, no gather, no reorder
        return finish(source.read_rows(name, first, first + idx.size))
    order = np.argsort(idx, kind="stable")
    # One stored row per entry of ``idx`` (a repeated index starts a new run), sorted.
    data = finish(source.read_row_set(name, idx[order]))
    out = np.empty_like(data)
    out[order] = data
    return out


def load_slot(source: ModelSource, slot: RoleSlot,
              rows: Sequence[int] | np.ndarray | None = None,
              cols: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """The slot as float32 in HF layout; ``rows`` selects HF rows (e.g. embedding rows),
    ``cols`` HF columns of a matrix (e.g. the residual dimensions a check pairs).

    Reads only what is needed: the selected rows for row-major storage, one expert of a stacked
    tensor, or (for transposed storage, where an HF row is a stored column) every stored row
    block, keeping only the wanted columns. Columns are selected before the float32 conversion.
    """
    info = source.tensors()[slot.tensor]
    col_idx = None if cols is None else np.asarray(cols, dtype=np.int64)
    if _is_stacked(source, slot):
        assert slot.expert is not None
        mat = source.read_rows(slot.tensor, slot.expert, slot.expert + 1)[0]
        mat = mat[_hf_row_index(slot, mat.shape[0], rows)]
        if col_idx is not None:
            mat = np.take(mat, col_idx, axis=1)
        return np.ascontiguousarray(mat, dtype=np.float32)
    if len(info.shape) <= 1 or not slot.transpose:
        if col_idx is not None and len(info.shape) != 2:
            raise IndexError(f"columns of {slot.role}: not a matrix ({info.shape})")
        idx = _hf_row_index(slot, info.rows, rows)
        return np.ascontiguousarray(_read_index(source, slot.tensor, idx, col_idx))
    idx = _hf_row_index(slot, info.shape[1], rows)
    if col_idx is not None:  # HF columns are stored rows here: read only those
        stored = _read_index(source, slot.tensor, col_idx)
        return np.ascontiguousarray(np.take(stored, idx, axis=1).T)
    blocks = [np.asarray(block[:, idx], dtype=np.float32)
              for _, block in source.iter_row_blocks(slot.tensor)]
    return np.ascontiguousarray(np.concatenate(blocks, axis=0).T)
