"""``library build`` on a real Dask cluster: a scheduler and two worker processes on
127.0.0.1, one worker killed mid-build -- every model ends in the library exactly once.

The cluster is started with Dask's own command-line entry points, bounded in time, and torn
down (by process id) whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from modelprint.cli import main
from modelprint.library import ModelLibrary
from tests.synth import make_model

N_MODELS = 10


def _wait(predicate: object, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "MODELPRINT_CACHE_DIR": str(tmp_path / "worker-cache"),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "3"}
    py = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [py, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(sched_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(sched_file.exists, 60, "the scheduler")
        _wait(lambda: sched_file.stat().st_size > 0, 10, "the scheduler file")
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [py, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                 "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                 "--death-timeout", "60"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def _count(lib: Path) -> int:
    try:
        with sqlite3.connect(lib / "library.sqlite", timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_build_survives_a_killed_worker(tmp_path: Path,
                                        cluster: tuple[str, list[subprocess.Popen[bytes]]]
                                        ) -> None:
    address, procs = cluster
    models = [make_model(tmp_path / "models", "llama", layers=6, hidden=192, heads=4,
                         kv_heads=2, vocab=512, seed=i).path for i in range(N_MODELS)]
    listing = tmp_path / "models.list"
    listing.write_text("".join(f"{p} m{i}\n" for i, p in enumerate(models))
                       + "hf:nobody/does-not-exist@main broken\n")
    lib = tmp_path / "lib"
    build = subprocess.Popen(
        [sys.executable, "-m", "modelprint.cli", "library", "-L", str(lib), "build",
         str(listing), "--scheduler", address, "--offline", "--no-progress"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _count(lib) >= 1, 120, "the first model")
        procs[1].send_signal(signal.SIGKILL)  # one worker dies mid-build
        assert _count(lib) < N_MODELS, "the build ended before the worker was killed"
        out, err = build.communicate(timeout=300)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(10)
    assert build.returncode == 1, err.decode()  # the broken reference is a recorded failure
    assert b"1 failed" in out
    with ModelLibrary(lib) as opened:
        names = [e.name for e in opened.entries()]
        assert names == sorted(f"m{i}" for i in range(N_MODELS))  # each exactly once
        assert opened.verify() == []
        failures = opened.index.failures()
        assert [f[1] for f in failures] == ["broken"] and "\n" not in failures[0][2]
    # a re-run continues where it stopped: nothing left to fingerprint but the broken one
    assert main(["library", "-L", str(lib), "build", str(listing), "--scheduler", address,
                 "--offline", "--no-progress"]) == 1
    assert _count(lib) == N_MODELS


def test_build_without_dask_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "one.list"
    listing.write_text(f"{tmp_path / 'x.fp.json'}\n")
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["library", "-L", str(tmp_path / "lib"), "build", str(listing)]) == 2
    assert "install modelprint[library]" in capsys.readouterr().err
