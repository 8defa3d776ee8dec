"""The long fuzz run: N hostile inputs per kind through the real entry points, counted.

    nice python -m benchmarks.fuzz.run --per-kind 10000          # ~1 h on 2 shared cores
    python -m benchmarks.fuzz.run --per-kind 200 --out /tmp/fz   # a quick look

Every input is reproducible from ``(kind, seed)`` (:mod:`benchmarks.fuzz.inputs`). Inputs run
in a pool of long-lived worker processes forked from a parent that has imported modelprint
once (a Python start per input would cost more than the inputs). The parent is the watchdog:

- an input still running after ``--timeout`` seconds (10) is a **hang**: its worker is killed
  and replaced;
- a worker whose resident set passes ``--rss-limit`` (1 GiB; polled every 20 ms) is killed and
  the input counted as **memory**; a worker that dies otherwise (the OOM killer, a crash) is
  counted as **died**;
- each worker resets its peak RSS before an input (``/proc/self/clear_refs``) and reports the
  input's own peak, so ``max RSS`` per kind is a per-input figure, not a process lifetime's;
- workers are recycled every ``--recycle`` inputs, so a slow leak cannot build up.

Outcomes of inputs that ran are classified by :func:`benchmarks.fuzz.harness.run_case`
(error / accepted / unnamed / internal / traceback). Writes ``results.json`` (counts, and
every input that was not clean with its seed) and ``RESULTS.md`` into ``--out``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from multiprocessing.connection import Connection, wait  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks.fuzz.harness import (  # noqa: E402
    peak_rss,
    peak_rss_reset,
    rss_of,
    run_case,
    vm_size,
)
from benchmarks.fuzz.inputs import KINDS, base_fingerprint, write_case  # noqa: E402

HERE = Path(__file__).resolve().parent
OUTCOMES = ("error", "accepted", "unnamed", "internal", "traceback", "hang", "memory", "died")
BAD = ("unnamed", "internal", "traceback", "hang", "memory", "died")


def seed_of(kind: str, index: int, base: int) -> int:
    """The seed of input ``index`` of ``kind``: ``random.Random(seed)`` regenerates it."""
    return base * 1_000_000_007 + KINDS.index(kind) * 100_000_000 + index


def replay(kind: str, seed: int, folder: Path) -> Any:
    """Write and run one input (as a worker does): ``python -c`` this to debug a failure."""
    args = write_case(kind, random.Random(seed), folder)
    return run_case(args, folder)


def _worker(conn: Connection, scratch: str, address_space: int) -> None:
    # Backstop for the parent's RSS polling: an allocation far past the limit fails here
    # (a MemoryError, counted as a traceback) instead of waking the machine's OOM killer.
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        kind, index, seed = task
        folder = Path(scratch) / f"{kind}-{index}"
        start = time.perf_counter()
        try:
            args = write_case(kind, random.Random(seed), folder)
        except Exception as exc:  # a generator bug must not stop the run
            args, outcome, detail = None, "generator", f"{type(exc).__name__}: {exc}"[:300]
        if args is not None:
            # time and memory are the entry point's alone, from here
            conn.send("go")
            peak_rss_reset()
            start = time.perf_counter()
            out = run_case(args, folder)
            outcome, detail = out.outcome, out.detail
        seconds = time.perf_counter() - start
        shutil.rmtree(folder, ignore_errors=True)
        conn.send((kind, index, seed, outcome, detail, seconds, peak_rss()))


class _Slot:
    """One worker process, its pipe and what it is running."""

    def __init__(self, ctx: Any, scratch: str, address_space: int) -> None:
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, scratch, address_space),
                                daemon=True)
        self.proc.start()
        child.close()
        self.conn: Connection = parent
        self.task: tuple[str, int, int] | None = None
        self.started = 0.0
        self.running = False      # past generation: the input is in the entry point
        self.done = 0

    def give(self, task: tuple[str, int, int]) -> None:
        self.task, self.started, self.running = task, time.monotonic(), False
        self.conn.send(task)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()


def run(kinds: list[str], per_kind: int, base_seed: int, workers: int, timeout: float,
        rss_limit: int, recycle: int, progress: bool = True,
        out: Path | None = None) -> dict[str, Any]:
    """Run the inputs; with ``out``, results so far are written there every 3,000 inputs
    (marked partial), so a run cut short still leaves its counts."""
    scratch = tempfile.mkdtemp(prefix="modelprint-fuzz-")
    os.environ.setdefault("MODELPRINT_CACHE_DIR", str(Path(scratch) / "cache"))
    # warm up in the parent: every worker inherits the imports and the base fingerprint
    base_fingerprint(Path(scratch))
    for kind in kinds:
        replay(kind, seed_of(kind, 0, base_seed), Path(scratch) / "warm" / kind)
    ctx = mp.get_context("fork")
    tasks = [(k, i, seed_of(k, i, base_seed)) for i in range(per_kind) for k in kinds]
    tasks.reverse()
    counts: dict[str, Counter[str]] = {k: Counter() for k in kinds}
    max_rss: dict[str, int] = defaultdict(int)
    max_seconds: dict[str, float] = defaultdict(float)
    failures: list[dict[str, Any]] = []
    # the parent's address space (libraries mapped) plus twice the RSS limit
    space = vm_size() + 2 * rss_limit
    slots = [_Slot(ctx, scratch, space) for _ in range(workers)]
    started = time.monotonic()

    def summary(wall: float) -> dict[str, Any]:
        return _summary(counts, max_rss, max_seconds, failures, per_kind, base_seed, workers,
                        timeout, rss_limit, wall)
    total, finished = len(tasks), 0

    def record(kind: str, index: int, seed: int, outcome: str, detail: str,
               seconds: float, rss: int) -> None:
        nonlocal finished
        finished += 1
        counts[kind][outcome] += 1
        if outcome != "generator":   # the figures are the entry point's, not the generator's
            max_rss[kind] = max(max_rss[kind], rss)
            max_seconds[kind] = max(max_seconds[kind], seconds)
        if outcome not in ("error", "accepted"):
            failures.append(dict(kind=kind, index=index, seed=seed, outcome=outcome,
                                 detail=detail, seconds=round(seconds, 2),
                                 rss_mb=rss >> 20))
        if out is not None and finished % 3000 == 0 and finished < total:
            _write(out, {**summary(time.monotonic() - started), "partial": True})
        if progress and finished % 500 == 0:
            rate = finished / (time.monotonic() - started)
            bad = sum(counts[k][o] for k in kinds for o in BAD)
            print(f"{finished}/{total} inputs, {rate:.1f}/s, {bad} not clean, eta "
                  f"{(total - finished) / rate / 60:.0f} min", flush=True)

    try:
        while tasks or any(s.task for s in slots):
            for i, s in enumerate(slots):
                if s.task is None and tasks:
                    if s.done >= recycle:
                        s.stop()
                        s = slots[i] = _Slot(ctx, scratch, space)
                    s.give(tasks.pop())
            busy = [s for s in slots if s.task is not None]
            ready = wait([s.conn for s in busy], timeout=0.02)
            now = time.monotonic()
            for i, s in enumerate(slots):
                if s.task is None:
                    continue
                kind, index, seed = s.task
                if s.conn in ready:
                    try:
                        msg = s.conn.recv()
                        if msg == "go":
                            s.started, s.running = now, True
                        else:
                            record(*msg)
                            s.task, s.done = None, s.done + 1
                        continue
                    except (EOFError, OSError):
                        outcome, detail = "died", f"exit code {s.proc.exitcode}"
                elif now - s.started > (timeout if s.running else 6 * timeout):
                    outcome = "hang" if s.running else "generator"
                    detail = f"still running after {now - s.started:.0f} s"
                elif s.running and (rss := rss_of(s.proc.pid)) > rss_limit:
                    outcome, detail = "memory", f"RSS {rss >> 20} MB"
                elif not s.proc.is_alive():
                    outcome, detail = "died", f"exit code {s.proc.exitcode}"
                else:
                    continue
                rss = rss_of(s.proc.pid)
                s.kill()
                record(kind, index, seed, outcome, detail, now - s.started, rss)
                slots[i] = _Slot(ctx, scratch, space)
    finally:
        for s in slots:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return summary(time.monotonic() - started)


def _summary(counts: dict[str, Counter[str]], max_rss: dict[str, int],
             max_seconds: dict[str, float], failures: list[dict[str, Any]], per_kind: int,
             base_seed: int, workers: int, timeout: float, rss_limit: int,
             wall: float) -> dict[str, Any]:
    kinds = list(counts)
    return {
        "per_kind": per_kind, "base_seed": base_seed, "workers": workers,
        "timeout_s": timeout, "rss_limit_mb": rss_limit >> 20, "wall_s": round(wall, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "kinds": {k: {"inputs": sum(counts[k].values()),
                      **{o: counts[k][o] for o in (*OUTCOMES, "generator")},
                      "max_rss_mb": max_rss[k] >> 20,
                      "max_seconds": round(max_seconds[k], 2)} for k in kinds},
        "failures": failures,
    }


def _write(out: Path, res: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "RESULTS.md").write_text(markdown(res))


def markdown(res: dict[str, Any]) -> str:
    head = ("| kind | inputs | clean errors | accepted | tracebacks | hangs > "
            f"{res['timeout_s']:g} s | over {res['rss_limit_mb']} MB | other bad | "
            "max RSS per input | slowest input |")
    lines = [
        "# Fuzz run: hostile inputs through the real entry points", "",
        *(["**Partial: the run was still going when this was written.**", ""]
          if res.get("partial") else []),
        "Produced by `nice python -m benchmarks.fuzz.run --per-kind "
        f"{res['per_kind']}` (seed {res['base_seed']}, {res['workers']} workers, "
        f"{res['wall_s'] / 60:.0f} min wall on {res['machine']}). What each kind is and how "
        "outcomes are classified: `benchmarks/fuzz/run.py` and `benchmarks/fuzz/harness.py`. "
        "*Other bad* = a one-line error not naming the file, an internal error (exit 3), a "
        "worker that died, or an input the generator could not write. *Max RSS per input* is "
        "the worker's peak resident set while it ran that one input (the Python process with "
        "modelprint loaded is ~100 MB of it); *slowest input* is wall time on a shared "
        "machine.", "",
        head, "|---" * (head.count("|") - 1) + "|",
    ]
    for kind, c in res["kinds"].items():
        other = c["unnamed"] + c["internal"] + c["died"] + c["generator"]
        lines.append(f"| {kind} | {c['inputs']} | {c['error']} | {c['accepted']} | "
                     f"{c['traceback']} | {c['hang']} | {c['memory']} | {other} | "
                     f"{c['max_rss_mb']} MB | {c['max_seconds']:.1f} s |")
    lines += ["", f"Inputs that were not clean: {len(res['failures'])}"
              + (" (listed with their seeds in results.json)." if res["failures"] else ".")]
    for f in res["failures"][:30]:
        lines.append(f"- {f['kind']} seed {f['seed']}: {f['outcome']} -- {f['detail']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-kind", type=int, default=10_000)
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--rss-limit-mb", type=int, default=1024)
    ap.add_argument("--recycle", type=int, default=400)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    res = run(args.kinds, args.per_kind, args.seed, args.workers, args.timeout,
              args.rss_limit_mb << 20, args.recycle, out=args.out)
    _write(args.out, res)
    print(markdown(res))
    bad = sum(c[o] for c in res["kinds"].values() for o in (*BAD, "generator"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
