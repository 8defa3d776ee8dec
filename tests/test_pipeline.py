"""checks.pipeline.ordered_map: results in order, at most ``workers`` in flight, and a
consumer that stops early leaves nothing running."""

from __future__ import annotations

import threading
import time
from contextlib import closing

from modelprint.checks.pipeline import ordered_map


def test_results_come_in_order_whatever_finishes_first() -> None:
    def slow_first(x: int) -> int:
        time.sleep(0.02 if x % 2 == 0 else 0.0)
        return x * x

    assert list(ordered_map(slow_first, range(9))) == [x * x for x in range(9)]
    assert list(ordered_map(slow_first, range(9), workers=1)) == [x * x for x in range(9)]


def test_at_most_workers_in_flight_and_an_early_stop_runs_no_more() -> None:
    running, peak, started = 0, 0, []
    lock = threading.Lock()

    def work(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            started.append(x)
        time.sleep(0.01)
        with lock:
            running -= 1
        return x

    pulled = []

    def items() -> object:
        for x in range(100):
            pulled.append(x)
            yield x

    with closing(ordered_map(work, items(), workers=2)) as results:
        for x in results:
            if x == 3:
                break
    assert peak <= 2 and running == 0
    assert max(started) <= 4 and max(pulled) <= 4     # one item beyond the stop at most
