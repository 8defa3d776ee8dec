"""Fingerprint the models of a pair side by side on a multi-core machine.

A cold ``modelprint compare`` spends most of its time fingerprinting the two models, one after
the other, on one core each (the statistics hold the GIL). Building the second model's
fingerprint in a child process while this process builds the first uses the second core:
the child writes its fingerprint into the shared content-hash cache, where this process then
finds it. Nothing else crosses the process boundary, so a child that fails (or cannot start)
changes nothing: the model is then fingerprinted here as before and reports its own error.

Only plain weight references qualify (not ``*.fp.json`` files, which need no work, and only
with the cache on); a custom loader (tests) disables it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path


def _warm(reference: str, base_dir: str | None, offline: bool | None) -> bool:
    """In the child: build and cache the fingerprint (no weights view, no progress bar)."""
    from modelprint.errors import InputError
    from modelprint.models import load_model

    try:
        load_model(reference, base_dir, offline=offline, use_cache=True, weights=False,
                   progress=False)
    except InputError:
        return False  # the parent reports it, with the file and the cause
    return True


def _needs_work(reference: str, base_dir: Path | None) -> bool:
    """Weights to fingerprint (a ``*.fp.json`` reference is read, not built); a reference
    that does not parse is left to the caller, which reports it."""
    from modelprint.errors import InputError
    from modelprint.refs import parse_reference

    try:
        return parse_reference(reference, base_dir).kind != "fingerprint"
    except InputError:
        return False


def start(references: Sequence[tuple[str, Path | None]], offline: bool | None
          ) -> tuple[ProcessPoolExecutor, list[Future[bool]]] | None:
    """Start fingerprinting ``references`` in one child process; None when not worth it
    (a single core, nothing to do, or processes unavailable)."""
    todo = [(r, b) for r, b in references if _needs_work(r, b)]
    if not todo or (os.cpu_count() or 1) < 2:
        return None
    try:
        pool = ProcessPoolExecutor(max_workers=1,
                                   mp_context=multiprocessing.get_context("spawn"))
        futures = [pool.submit(_warm, r, str(b) if b is not None else None, offline)
                   for r, b in todo]
    except (OSError, RuntimeError):
        return None
    return pool, futures


def finish(started: tuple[ProcessPoolExecutor, list[Future[bool]]] | None) -> None:
    """Wait for the child; whatever it did or failed to do, the caller loads as usual."""
    if started is None:
        return
    pool, futures = started
    for f in futures:
        with contextlib.suppress(Exception):  # a broken child only loses the speed-up
            f.result()
    pool.shutdown()
