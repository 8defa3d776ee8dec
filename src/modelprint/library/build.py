"""Build a library from many models: one Dask task per model, the client alone writing.

Fingerprinting is embarrassingly parallel and I/O-heavy, so each model is one task on Dask
(``dask.distributed``): an in-process :class:`~distributed.LocalCluster` by default, or the
scheduler of a cluster the user runs (``--scheduler tcp://HOST:PORT``). A worker resolves the
reference itself (``hf:`` models are fetched through huggingface_hub into the worker's own
cache), fingerprints it and sends the fingerprint back as plain JSON data; only the client
writes objects and index rows, so the library needs no shared file system and no lock
beyond SQLite's own.

Resumable and exactly-once. A model whose name is already in the library with the same
reference is skipped, so a killed build re-run continues where it stopped. A worker killed
mid-task has its task rescheduled by Dask on another worker; adding the same fingerprint
twice is a no-op (same content digest, same name), so nothing is added twice. A model that
fails -- bad reference, hostile file, a task that killed its workers too often -- is recorded
with its one-line error (``library list --failures``) and the build goes on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelprint.errors import InputError
from modelprint.library.core import ModelLibrary, default_name, now
from modelprint.library.store import LibraryError

INSTALL_HINT = "library build needs Dask: install modelprint[library] (pip install " \
               "'modelprint[library]', or pip install 'dask[distributed]')"


@dataclass(frozen=True)
class Job:
    reference: str
    name: str


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0


def read_list(path: Path) -> list[Job]:
    """A LIST file: one ``MODEL [NAME]`` a line; ``#`` starts a comment. Relative paths are
    relative to the LIST file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the model list ({exc})") from None
    jobs: list[Job] = []
    names: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) > 2:
            raise InputError(f"{path}:{lineno}", "expected `MODEL [NAME]`, got "
                             f"{len(parts)} words")
        ref = parts[0]
        if not ref.startswith("hf:") and not Path(ref).is_absolute():
            ref = str((path.parent / ref).resolve())
        name = parts[1] if len(parts) == 2 else default_name(parts[0])
        if name in names:
            raise InputError(f"{path}:{lineno}", f"name {name!r} already used on line "
                             f"{names[name]}; give one of them a NAME")
        names[name] = lineno
        jobs.append(Job(ref, name))
    return jobs


def _bytes_of(reference: str) -> int:
    p = Path(reference)
    if reference.startswith("hf:") or not p.exists():
        return 0
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def fingerprint_task(reference: str, offline: bool | None) -> dict[str, Any]:
    """Runs on a worker: the fingerprint as JSON data, or the one-line error."""
    import os

    from modelprint.models import load_model

    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    start = time.perf_counter()
    try:
        view = load_model(reference, None, offline=offline)
    except InputError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # a bug or an unexpected file: recorded, the build goes on
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "fingerprint": view.fingerprint.to_json(),
            "bytes": _bytes_of(reference), "seconds": time.perf_counter() - start}


def _client(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("library build", INSTALL_HINT) from None
    if scheduler:
        try:
            return Client(scheduler, timeout="30s"), None
        except (OSError, TimeoutError) as exc:
            raise InputError(scheduler, f"cannot reach the Dask scheduler ({exc})") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    return Client(cluster), cluster


def build(library: ModelLibrary, jobs: Sequence[Job], *, scheduler: str | None = None,
          workers: int = 1, offline: bool | None = None, progress: bool = True,
          retry_failed: bool = True) -> BuildReport:
    """Fingerprint every job's model on Dask and add it to ``library``."""
    from modelprint.fingerprint.model import Fingerprint

    report = BuildReport()
    start = time.perf_counter()
    todo: list[Job] = []
    failed_before = {r for r, *_ in library.index.failures()}
    for job in jobs:
        have = library.index.get(job.name)
        if have is not None and have.reference == job.reference:
            report.skipped.append(job.name)
        elif have is not None:
            report.failed.append((job.name, f"name already used by {have.reference}"))
        elif retry_failed or job.reference not in failed_before:
            todo.append(job)
    if not todo:
        report.seconds = time.perf_counter() - start
        return report
    client, cluster = _client(scheduler, workers)
    bar = _bar(len(todo), progress)
    try:
        from distributed import as_completed

        futures = {client.submit(fingerprint_task, job.reference, offline, pure=False,
                                 key=f"modelprint-fp-{i}-{job.name}"): job
                   for i, job in enumerate(todo)}
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker after Dask's retries, a lost scheduler
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _record(library, job, result, report, Fingerprint)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{report.bytes_read / 1e9:.2f} GB read, "
                                    f"{len(report.failed)} failed")
    finally:
        if bar is not None:
            bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    report.seconds = time.perf_counter() - start
    return report


def _record(library: ModelLibrary, job: Job, result: dict[str, Any], report: BuildReport,
            fp_type: Any) -> None:
    if not result.get("ok"):
        error = " ".join(str(result.get("error", "unknown error")).split())
        library.index.record_failure(job.reference, job.name, error, now())
        report.failed.append((job.name, error))
        return
    try:
        fp = fp_type.from_json(result["fingerprint"], where=job.reference)
        added = library.add(fp, name=job.name, reference=job.reference)
    except LibraryError as exc:
        library.index.record_failure(job.reference, job.name, str(exc), now())
        report.failed.append((job.name, str(exc)))
        return
    report.bytes_read += int(result.get("bytes") or 0)
    (report.added if added.new else report.unchanged).append(job.name)


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="model", desc="library build", dynamic_ncols=True)
