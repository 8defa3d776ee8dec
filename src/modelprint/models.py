"""Load a MODEL reference as the checks see it: a fingerprint, plus weights when at hand.

``load_model`` is the one door through which the CLI, the audit engine and the pytest plugin
reach models. A ``*.fp.json`` reference loads the file (no weights: the checks that need them
say "not applicable"); anything else is opened as a source and fingerprinted through the
content-addressed cache of :mod:`modelprint.fingerprint.cache`.

A process-level memo returns the same :class:`ModelView` for the same reference, so a pytest
session with many audit items loads each model once. Entries for local paths are checked
against the size and mtime of what the path holds, so a model rewritten during a session is
reloaded rather than served stale.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from modelprint._blas import single_thread_blas
from modelprint.arch.base import ArchInfo, RoleSlot
from modelprint.checks.base import ModelView
from modelprint.fingerprint.model import Fingerprint
from modelprint.refs import ModelRef, parse_reference
from modelprint.sources.base import ModelSource
from modelprint.sources.pages import PageReleaser

_MEMO: dict[tuple[Any, ...], tuple[tuple[Any, ...], ModelView]] = {}
_MEMO_LOCK = threading.RLock()


class SourceWeights:
    """:class:`~modelprint.checks.base.WeightAccess` over an open source.

    Tensors come back float32 in the HF layout. Norm gains are returned as effective gains
    (``norm_offset + w``), like the fingerprint's ``vectors``, so HF and GGUF Gemma agree.
    Every read counts its tensor's stored size towards :class:`PageReleaser` (a few rows fault
    in much of a mapped tensor), so the checks' pass over a model keeps RSS bounded too.
    """

    def __init__(self, source: ModelSource, arch: ArchInfo, slots: list[RoleSlot]) -> None:
        self.source = source
        self.arch = arch
        self._slots = {(s.role, s.layer, s.expert): s for s in slots}
        self._pages = PageReleaser(source)

    def _read(self, slot: RoleSlot, rows: np.ndarray | None,
              cols: np.ndarray | None) -> np.ndarray:
        from modelprint.arch import load_slot

        values = load_slot(self.source, slot, rows=rows, cols=cols)
        self._pages.add(self.source.tensors()[slot.tensor].nbytes)
        offset = self._offset(slot.role)
        return values + np.float32(offset) if offset else values

    def _offset(self, role: str) -> float:
        from modelprint.fingerprint.build import is_norm_gain

        return self.arch.norm_offset if is_norm_gain(role) else 0.0

    def slots(self) -> list[RoleSlot]:
        return list(self._slots.values())

    def get(self, role: str, layer: int | None, expert: int | None = None, *,
            cols: np.ndarray | None = None) -> np.ndarray | None:
        slot = self._slots.get((role, layer, expert))
        return None if slot is None else self._read(slot, None, cols)

    def rows(self, role: str, layer: int | None, index: np.ndarray,
             expert: int | None = None, *, cols: np.ndarray | None = None
             ) -> np.ndarray | None:
        slot = self._slots.get((role, layer, expert))
        return None if slot is None else self._read(slot, np.asarray(index, dtype=np.int64),
                                                    cols)

    def close(self) -> None:
        self.source.close()


def _signature(ref: ModelRef) -> tuple[Any, ...]:
    """What must be unchanged for a memo entry to stay valid (local paths only)."""
    if ref.path is None:
        return ()
    path = ref.path
    try:
        entries = sorted(path.iterdir()) if path.is_dir() else [path]
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in entries
                     if p.is_file())
    except OSError:
        return ()


def _memo_key(ref: ModelRef, offline: bool | None, use_cache: bool) -> tuple[Any, ...]:
    where = str(ref.path.resolve()) if ref.path is not None else f"{ref.repo_id}@{ref.revision}"
    return (ref.kind, where, offline, use_cache)


def load_model(reference: str | Path, base_dir: str | Path | None = None, *,
               offline: bool | None = None, use_cache: bool = True, weights: bool = False,
               progress: bool | None = False) -> ModelView:
    """A :class:`ModelView` of ``reference`` (see CONTRACT.md for what a reference may be).

    ``weights=True`` keeps the source open and attaches :class:`SourceWeights` (never for a
    fingerprint file, which has none). Raises an :class:`~modelprint.errors.InputError`
    subclass for anything a user can get wrong.
    """
    ref = parse_reference(str(reference), base_dir)
    key = _memo_key(ref, offline, use_cache)
    sig = _signature(ref)
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None and hit[0] == sig and (hit[1].weights is not None or not weights
                                                  or ref.kind == "fingerprint"):
            return hit[1]
        view = _load(ref, offline=offline, use_cache=use_cache, weights=weights,
                     progress=progress)
        old = hit[1] if hit is not None else None
        if old is not None and isinstance(old.weights, SourceWeights):
            old.weights.close()
        _MEMO[key] = (sig, view)
        return view


def _load(ref: ModelRef, *, offline: bool | None, use_cache: bool, weights: bool,
          progress: bool | None) -> ModelView:
    if ref.kind == "fingerprint":
        assert ref.path is not None
        return ModelView(Fingerprint.load(ref.path))
    from modelprint.fingerprint.cache import fingerprint_source
    from modelprint.sources import open_source

    source = open_source(ref, offline=offline)
    try:
        with single_thread_blas():
            fp = fingerprint_source(source, use_cache=use_cache, progress=progress)
        fp.model = replace(fp.model, kind=ref.kind)
        if not weights:
            source.close()
            return ModelView(fp)
        from modelprint.arch import resolve

        arch, slots = resolve(source)
        return ModelView(fp, SourceWeights(source, arch, slots))
    except BaseException:
        source.close()
        raise


def clear_memo() -> None:
    """Forget every loaded model (tests; long-running processes that reload models)."""
    with _MEMO_LOCK:
        for _, view in _MEMO.values():
            if isinstance(view.weights, SourceWeights):
                view.weights.close()
        _MEMO.clear()
