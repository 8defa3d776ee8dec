"""Keep BLAS single-threaded inside modelprint's numeric work.

modelprint's products are small (hundreds of rows) and many. On this kind of machine a
multi-threaded OpenBLAS spends more time waking and spinning threads than computing: a
128 x 64 product was measured at 40 ms with two threads against 0.05 ms with one. The limit
is scoped (threadpoolctl), so a user's own code in the same process keeps its settings.

The limit is process-wide, and OpenBLAS takes it only from the thread that sets it up front
(a count set on a worker thread was measured to change nothing, OpenBLAS 0.3.31), so nested
and concurrent scopes share one: the outermost sets the limit and the last to leave restores
it. ``Engine.evidence_many`` opens that scope on the calling thread around the worker
threads that compute the checks, and leaves it last. Nested scopes cost nothing (setting the
limit costs ~1 ms: threadpoolctl inspects the loaded libraries; a compare opens 24).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

_LOCK = threading.Lock()
_depth = 0
_limiter: Any = None


@contextmanager
def single_thread_blas() -> Iterator[None]:
    global _depth, _limiter
    with _LOCK:
        if _depth == 0:
            _limiter = threadpool_limits(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _limiter.restore_original_limits()
                _limiter = None
