"""Run one command and report what it cost as a whole: ``python -m benchmarks.peers.meter CMD``.

Prints one JSON line on stdout: wall seconds, user and system CPU seconds, peak RSS (of the
command and of every process it waited for: ``getrusage(RUSAGE_CHILDREN)`` in this fresh
process holds nothing else), its exit code, the load average when it ended, and the last
part of its stdout/stderr. The command's own output is captured, not shown.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
        "peak_rss_mb": ru.ru_maxrss / 1024, "returncode": res.returncode,
        "loadavg": list(os.getloadavg()),
        "stdout": res.stdout[-200_000:], "stderr": res.stderr[-4000:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
