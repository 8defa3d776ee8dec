"""The BLAS thread limit: one scope for nested and concurrent checks, restored at the end."""

from __future__ import annotations

import threading

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from modelprint._blas import single_thread_blas


def _blas_threads() -> set[int]:
    assert np.dot(np.ones(2), np.ones(2)) == 2.0     # numpy's BLAS is loaded
    return {int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_checks_on_worker_threads_run_under_the_engine_threads_limit() -> None:
    """As ``Engine.evidence_many`` uses it: the calling thread opens the scope, checks on
    worker threads open their own inside it (and see one BLAS thread), the caller leaves
    last and the user's setting is back."""
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before == {2}
        seen: list[set[int]] = []

        def check() -> None:
            with single_thread_blas(), single_thread_blas():
                seen.append(_blas_threads())
            seen.append(_blas_threads())        # left its own scope: the caller's holds

        with single_thread_blas():
            workers = [threading.Thread(target=check) for _ in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(10)
            assert _blas_threads() <= {1}
        assert seen and all(s <= {1} for s in seen)
        assert _blas_threads() == before
