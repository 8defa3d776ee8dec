"""Keep BLAS single-threaded inside modelprint's numeric work.

modelprint's products are small (hundreds of rows) and many. On this kind of machine a
multi-threaded OpenBLAS spends more time waking and spinning threads than computing: a
128 x 64 product was measured at 40 ms with two threads against 0.05 ms with one. The limit
is scoped (threadpoolctl), so a user's own code in the same process keeps its settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits


@contextmanager
def single_thread_blas() -> Iterator[None]:
    with threadpool_limits(limits=1, user_api="blas"):
        yield
