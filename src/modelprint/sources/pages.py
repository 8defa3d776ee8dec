"""Keeping the resident pages of memory-mapped weights bounded.

Sources map their weight files; every page a read touches counts in the process's RSS until
the map is dropped, so a pass over a model -- the fingerprint build, or the checks reading
matrix after matrix -- would show an RSS that grows with the model size although nothing is
held. :class:`PageReleaser` counts the bytes read and asks the source to drop its resident
pages (``madvise(MADV_DONTNEED)``: a read-only file map re-reads them from the page cache on
the next access, so views already handed out stay valid) every :data:`RELEASE_BYTES`.
"""

from __future__ import annotations

import threading

from modelprint.sources.base import ModelSource

#: Ask the source to drop resident mapped pages after this many bytes were read.
RELEASE_BYTES = 64 * 1024 * 1024


class PageReleaser:
    """Counts bytes read by any thread and calls ``source.release_pages()`` every
    :data:`RELEASE_BYTES`."""

    def __init__(self, source: ModelSource) -> None:
        self._release = getattr(source, "release_pages", None)
        self._lock = threading.Lock()
        self._since = 0

    def add(self, nbytes: float) -> None:
        with self._lock:
            self._since += int(nbytes)
            if self._since < RELEASE_BYTES:
                return
            self._since = 0
        self.now()

    def now(self) -> None:
        if self._release is not None:
            self._release()
