"""Fingerprint the models of a pair side by side on a multi-core machine.

A cold ``modelprint compare`` spends most of its time fingerprinting the two models. Much of
one fingerprint holds the GIL (the sketch pass, the vocabulary, the JSON; numpy 2's
``bincount`` and the digests do release it), so a second thread gains nothing (measured:
two SmolLM2-size models on two threads 1.32 s, one after the other 1.29 s). Building the
second model's fingerprint in a child process while this process builds the first uses the
second core. On the SmolLM2-size benchmark pairs that is a wash against doing both here
(+-0.2 s: the child's start-up and imports against the overlap); it is kept because the
GIL-bound part of a fingerprint grows with the model and only a second process overlaps it
(not measured beyond those pairs). The child writes its fingerprint into the shared
content-hash cache, where this process then finds it. Nothing else crosses the process
boundary, so a child that fails (or cannot start) changes nothing: the model is then
fingerprinted here as before and reports its own error.

Only plain weight references qualify (not ``*.fp.json`` files, which need no work, and only
with the cache on); a custom loader (tests) disables it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess


def _warm(references: Sequence[tuple[str, str | None]], offline: bool | None) -> None:
    """In the child: build and cache the fingerprints (no weights view, no progress bar)."""
    from modelprint.errors import InputError
    from modelprint.models import load_model

    for reference, base_dir in references:
        with contextlib.suppress(InputError):  # the parent reports it, with file and cause
            load_model(reference, base_dir, offline=offline, use_cache=True, weights=False,
                       progress=False)


def _weight_files(reference: str, base_dir: Path | None, offline: bool | None
                  ) -> list[Path] | None:
    """The weight files of a plain weights reference; None for a ``*.fp.json`` (read, not
    built) and for a reference that does not parse or open (left to the caller, which
    reports it)."""
    from modelprint.errors import InputError
    from modelprint.refs import parse_reference
    from modelprint.sources import open_source

    try:
        ref = parse_reference(reference, base_dir)
        if ref.kind == "fingerprint":
            return None
        with open_source(ref, offline=offline) as source:
            return list(source.weight_files())
    except InputError:
        return None


def _needs_work(reference: str, base_dir: Path | None, offline: bool | None) -> bool:
    """Weights to fingerprint, unless all their files have a remembered sha256
    (fingerprinted before: a warm run, where starting a child -- ~0.1 s of process start and
    imports -- would only be terminated)."""
    from modelprint.fingerprint.hashing import memo_lookup

    files = _weight_files(reference, base_dir, offline)
    return files is not None and any(memo_lookup(f) is None for f in files)


def stored_bytes(reference: str, base_dir: Path | None, offline: bool | None) -> int | None:
    """The size of a reference's weight files, or None when it is not plain weights that
    open (see :func:`_weight_files`)."""
    files = _weight_files(reference, base_dir, offline)
    try:
        return None if files is None else sum(f.stat().st_size for f in files)
    except OSError:
        return None


def start(references: Sequence[tuple[str, Path | None]], offline: bool | None
          ) -> BaseProcess | None:
    """Start fingerprinting ``references`` in one child process; None when not worth it
    (a single core, nothing to do, or processes unavailable)."""
    todo = [(r, str(b) if b is not None else None) for r, b in references
            if _needs_work(r, b, offline)]
    if not todo or (os.cpu_count() or 1) < 2:
        return None
    import multiprocessing  # only when there is work: ~30 ms of imports

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
