"""Layer after layer, two at a time, results in order.

``activation_matching`` spends its time per layer pair in numpy products and scipy's linear
assignment, which release the GIL; one layer at a time it keeps one core busy. (Tried for
``mlp_matching`` too: no gain, its per-layer reading holds the GIL.) :func:`ordered_map` keeps
up to ``workers`` layers in flight on threads and hands the results back in the items' order,
so a check's sequential logic -- combining p-values layer by layer and stopping early
(``unit_matching.EarlyStop``) -- is unchanged. When the consumer stops, the layers still queued
are cancelled and those already running are waited for (at most ``workers - 1`` layers of extra
work, whose results are dropped: the reported numbers are exactly those of the sequential
loop).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Layers in flight: the machines this runs on have two cores, and each layer's work is
#: single-threaded (BLAS is limited to one thread inside the checks).
WORKERS = 2


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS
                ) -> Generator[R, None, None]:
    """``map(fn, items)`` with up to ``workers`` calls running at once, results in order.
    ``items`` is consumed on the caller's thread (it may be a generator doing work)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelprint-layer") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for job in pending:
                job.cancel()
