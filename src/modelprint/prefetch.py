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
from multiprocessing.process import BaseProcess
from pathlib import Path


def _warm(references: Sequence[tuple[str, str | None]], offline: bool | None) -> None:
    """In the child: build and cache the fingerprints (no weights view, no progress bar)."""
    from modelprint.errors import InputError
    from modelprint.models import load_model

    for reference, base_dir in references:
        with contextlib.suppress(InputError):  # the parent reports it, with file and cause
            load_model(reference, base_dir, offline=offline, use_cache=True, weights=False,
                       progress=False)


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
          ) -> BaseProcess | None:
    """Start fingerprinting ``references`` in one child process; None when not worth it
    (a single core, nothing to do, or processes unavailable)."""
    todo = [(r, str(b) if b is not None else None) for r, b in references if _needs_work(r, b)]
    if not todo or (os.cpu_count() or 1) < 2:
        return None
    try:
        child = multiprocessing.get_context("spawn").Process(
            target=_warm, args=(todo, offline), name="modelprint-prefetch", daemon=True)
        child.start()
    except (OSError, RuntimeError):
        return None
    return child


def finish(started: BaseProcess | None) -> None:
    """Stop the child once the caller has loaded what it was asked to prefetch.

    The caller loads the prefetched models itself after its own work: a fingerprint the
    child is building is waited for on the cache's lock, one that was cached already (a warm
    run, where the child is still starting up) is read at once. Whatever the child is doing
    then is of no use, so it is terminated rather than awaited -- waiting would add its
    interpreter start-up (~1-2 s) to every warm run. The cache survives that: the child
    writes entries atomically under a lock, and after the caller's load it has nothing left
    to write (the caller found or built every entry).
    """
    if started is None:
        return
    if started.is_alive():
        started.terminate()
    started.join()
    started.close()
