"""One streaming pass over a model: its :class:`Fingerprint`.

Everything later (checks, audits, reports) reads models through this. The pass visits every
role slot once, block by block in the stored precision (:mod:`.stats`), so peak memory is a
few row blocks whatever the model size -- never a whole tensor in float64. While the main
thread counts bit patterns, worker threads (``HASH_THREADS``) compute the BLAKE3 digest of
every stored tensor's bytes (once per stored tensor, even when it is split into q/k/v) and,
when the caller does not already know them, the sha256 of every weight file: ``hashlib`` and
``blake3`` release the GIL, so hashing runs beside the statistics.

What is stored, per :mod:`.model`:

* ``tensors``: one :class:`TensorStat` per slot (role, layer, expert), float64 moments.
* ``curves[role]``: per-layer ``std``/``mean``/``l2`` with a layer's experts merged exactly
  (Chan), ``None`` where a layer lacks the role.
* ``vectors[role]``: raw float64 values of bias and norm roles per layer. **Norm gains are
  stored as effective gains** ``norm_offset + w`` (and their statistics describe those):
  HF Gemma stores ``w`` and applies ``1 + w`` while llama.cpp's GGUF converter stores
  ``1 + w`` already, so only effective gains let the two compare alike. Model-level vectors
  (final norm, embedding norm) go to ``metadata["model_vectors"]``.
* ``documents``: the repository-file scan of :mod:`modelprint.license` (``{}`` while that
  module is unavailable), ``sketches``: :func:`.sketches.compute_sketches`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3
import numpy as np

from modelprint import __version__
from modelprint.arch.base import ArchInfo, RoleSlot
from modelprint.errors import NonFiniteWeightsError
from modelprint.fingerprint.hashing import file_sha256
from modelprint.fingerprint.model import Fingerprint, ModelInfo, TensorStat
from modelprint.fingerprint.stats import Accumulator, Moments
from modelprint.limits import MAX_VECTOR_VALUE
from modelprint.roles import is_vector_role
from modelprint.sources.base import ModelSource, TensorInfo
from modelprint.sources.pages import PageReleaser

#: Metadata strings longer than this are cut (chat templates, licence texts in GGUF keys).
MAX_META_STR = 2000
#: Metadata lists longer than this are dropped (GGUF vocabularies, merges, scores).
MAX_META_LIST = 64
class _CountingSource:
    """The source as the sketch pass sees it. Reading a few rows of a mapped tensor faults
    in much of it (kernel read-around), so each tensor touched counts with its full size."""

    def __init__(self, source: ModelSource, releaser: PageReleaser) -> None:
        self._source = source
        self._releaser = releaser
        self._last: str | None = None

    def _touch(self, name: str) -> None:
        if name != self._last:
            self._last = name
            self._releaser.add(self._source.tensors()[name].nbytes)

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        self._touch(name)
        return self._source.read_rows(name, start, stop)

    def read_row_set(self, name: str, rows: np.ndarray) -> np.ndarray:
        self._touch(name)
        return self._source.read_row_set(name, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def is_norm_gain(role: str) -> bool:
    """Norm scale vectors (not their biases): the ones ``norm_offset`` applies to."""
    return role.startswith("norm.") and not role.endswith("_bias")


def slot_shape(info: TensorInfo, slot: RoleSlot) -> list[int]:
    """The slot's shape in HF layout, from the stored tensor and the slot's selection."""
    shape = list(info.shape)
    if slot.expert is not None and len(shape) == 3:
        shape = shape[1:]
    if slot.transpose and len(shape) == 2:
        shape = [shape[1], shape[0]]
    if slot.row_ranges is not None and shape:
        shape[0] = sum(b - a for a, b in slot.row_ranges)
    return shape


def relative_name(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def _small_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Scalars and short lists only: fingerprints stay small, vocabularies stay out."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, str):
            out[str(k)] = v[:MAX_META_STR]
        elif isinstance(v, (bool, int, float)) or v is None:
            out[str(k)] = v
        elif isinstance(v, (list, tuple)) and len(v) <= MAX_META_LIST and all(
                isinstance(x, (bool, int, float, str)) for x in v):
            out[str(k)] = [x[:MAX_META_STR] if isinstance(x, str) else x for x in v]
    return out


def _documents(source: ModelSource) -> dict[str, Any]:
    try:
        from modelprint.license import scan_repository  # engineer E's module, optional here
    except ImportError:
        return {}
    return dict(scan_repository(source.repo_files(), source.metadata(), source.root))


def reference_kind(reference: str) -> str:
    from modelprint.refs import parse_reference

    try:
        return parse_reference(reference).kind
    except Exception:  # a source built directly in a test may carry any reference text
        return "unknown"


class _Progress:
    """A tqdm bar over stored bytes, on stderr, only when asked or stderr is a terminal."""

    def __init__(self, total: int, desc: str, show: bool | None) -> None:
        self.bar: Any = None
        if show is None:
            show = sys.stderr.isatty()
        if show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True,
                            unit_divisor=1024, file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def update(self, n: float) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _slot_moments(source: ModelSource, slot: RoleSlot, info: TensorInfo,
                  keep_values: bool) -> tuple[Moments, np.ndarray | None]:
    from modelprint.arch import iter_slot_blocks

    acc = Accumulator()
    kept: list[np.ndarray] = []
    for block in iter_slot_blocks(source, slot):
        acc.add(block)
        if keep_values:
            with np.errstate(invalid="ignore"):   # NaN/Inf: counted and refused by acc
                kept.append(np.asarray(block, dtype=np.float64).ravel())
    m = acc.result(info.file, slot.tensor)
    values = np.concatenate(kept) if keep_values and kept else None
    if values is not None and values.size and float(np.abs(values).max()) > MAX_VECTOR_VALUE:
        raise NonFiniteWeightsError(
            info.file, f"tensor {slot.tensor!r} holds values beyond the float32 range "
            f"(|value| > {MAX_VECTOR_VALUE:.4g}): a norm gain or bias that large is Inf "
            "wherever it is applied")
    return m, values


def build_fingerprint(source: ModelSource, *, progress: bool | None = None,
                      file_hashes: dict[Path, str] | None = None,
                      use_memo: bool = True) -> Fingerprint:
    """Fingerprint ``source`` in one pass.

    ``file_hashes`` may carry already known sha256 digests of the weight files (the cache
    computes them for its key); missing ones are hashed concurrently with the statistics.
    ``progress``: True/False forces the bar on/off; None shows it on a terminal.
    """
    from modelprint.arch import resolve
    from modelprint.fingerprint.sketches import compute_sketches

    arch, slots = resolve(source)
    tensors = source.tensors()
    known = dict(file_hashes or {})
    weight_files = list(source.weight_files())

    with ThreadPoolExecutor(max_workers=HASH_THREADS,
                            thread_name_prefix="modelprint-sha") as pool:
        # tensors in the order the stats pass visits them, so both threads read nearby pages
        order: list[str] = []
        seen: set[str] = set()
        for name in [s.tensor for s in slots] + list(tensors):
            if name not in seen:
                seen.add(name)
                order.append(name)
        releaser = PageReleaser(source)
        # whole files first: one hashing thread takes a file while the other starts on the
        # tensors, instead of the file digests trailing alone after every tensor's
        file_jobs: dict[Path, Future[str]] = {
            f: pool.submit(file_sha256, f, use_memo) for f in weight_files if f not in known}
        tensor_jobs: dict[str, Future[str]] = {
            name: pool.submit(_tensor_digest, source, name, releaser) for name in order}
        total = sum(tensors[n].nbytes for n in order)
        bar = _Progress(total, f"fingerprint {Path(source.reference).name[:40]}", progress)
        try:
            stats, layer_moments, vectors, model_vectors = _stats_pass(
                source, arch, slots, tensors, bar, releaser)
            sketches = compute_sketches(_CountingSource(source, releaser), arch, slots,
                                        pool=pool)
            documents = _documents(source)
            tensor_digest = {n: job.result() for n, job in tensor_jobs.items()}
            known.update({f: job.result() for f, job in file_jobs.items()})
            releaser.now()
            bar.update(total - (bar.bar.n if bar.bar is not None else 0))
        except BaseException:
            for job in [*tensor_jobs.values(), *file_jobs.values()]:
                job.cancel()
            raise
        finally:
            bar.close()

    for t in stats:
        t.blake3 = tensor_digest[t.tensor]
    used = {s.tensor for s in slots}
    meta = _small_metadata(source.metadata())
    fp_meta: dict[str, Any] = {
        "source": meta,
        "stored_bytes": int(total),
        "model_vectors": model_vectors,
        "other_tensors": [
            {"tensor": n, "shape": list(tensors[n].shape), "dtype": tensors[n].dtype,
             "blake3": tensor_digest[n]} for n in sorted(order) if n not in used],
    }
    files = {relative_name(f, source.root): known[f] for f in weight_files}
    model = ModelInfo(reference=source.reference, kind=reference_kind(source.reference),
                      revision=source.revision, files=files, modelprint_version=__version__)
    return Fingerprint(model=model, architecture=arch, tensors=stats,
                       curves=_curves(arch, layer_moments), vectors=vectors,
                       documents=documents, metadata=fp_meta, sketches=sketches)


def _tensor_digest(source: ModelSource, name: str, releaser: PageReleaser) -> str:
    """BLAKE3 of the tensor's stored bytes (fingerprint format /3; see ``model.py``)."""
    h = blake3.blake3()
    for chunk in source.iter_raw_bytes(name):
        h.update(chunk)
        releaser.add(len(chunk))
    return h.hexdigest()


#: Hashing threads. Every stored byte gets two digests when the files are new (the file's
#: sha256, for provenance and the cache key, at ~1.4-1.8 GB/s per core; its tensor's BLAKE3,
#: for identity, at ~4.6 GB/s): with one thread the digests were the build's long pole
#: (benchmarks/peers/RESULTS.md). Two let the file and the tensor digests run side by side
#: with the statistics; the three threads then share the two cores.
HASH_THREADS = 2


_PassResult = tuple[list[TensorStat], dict[tuple[str, int], Moments],
                    dict[str, list[list[float] | None]], dict[str, list[float]]]


def _stats_pass(source: ModelSource, arch: ArchInfo, slots: list[RoleSlot],
                tensors: dict[str, TensorInfo], bar: _Progress,
                releaser: PageReleaser) -> _PassResult:
    stats: list[TensorStat] = []
    # per (role, layer): (expert, moments), merged in expert order at the end so the curves
    # do not depend on the order tensors happen to sit in the files
    parts: dict[tuple[str, int], list[tuple[int, Moments]]] = {}
    vectors: dict[str, list[list[float] | None]] = {}
    model_vectors: dict[str, list[float]] = {}
    for slot in slots:
        info = tensors[slot.tensor]
        offset = arch.norm_offset if is_norm_gain(slot.role) else 0.0
        keep = is_vector_role(slot.role) and slot.expert is None
        m, values = _slot_moments(source, slot, info, keep)
        m = m.shifted(offset)
        stats.append(TensorStat(
            role=slot.role, layer=slot.layer, expert=slot.expert, tensor=slot.tensor,
            shape=slot_shape(info, slot), dtype=info.dtype, count=m.count, mean=m.mean,
            std=m.std, l2=m.l2))
        if slot.layer is not None:
            parts.setdefault((slot.role, slot.layer), []).append(
                (-1 if slot.expert is None else slot.expert, m))
        if values is not None:
            vec = (values + offset).tolist()
            if slot.layer is None:
                model_vectors[slot.role] = vec
            else:
                per_layer = vectors.setdefault(slot.role, [None] * arch.num_layers)
                if 0 <= slot.layer < len(per_layer):
                    per_layer[slot.layer] = vec
        done = info.nbytes * m.count / max(info.numel, 1)
        bar.update(done)
        releaser.add(done)
    layer_moments: dict[tuple[str, int], Moments] = {}
    for key, ms in parts.items():
        total = Moments()
        for _, m in sorted(ms, key=lambda em: em[0]):
            total = total.merge(m)
        layer_moments[key] = total
    stats.sort(key=lambda t: (-1 if t.layer is None else t.layer, t.role,
                              -1 if t.expert is None else t.expert))
    return stats, layer_moments, vectors, model_vectors


def _curves(arch: ArchInfo, layer_moments: dict[tuple[str, int], Moments]
            ) -> dict[str, dict[str, list[float | None]]]:
    curves: dict[str, dict[str, list[float | None]]] = {}
    stat_of: dict[str, Callable[[Moments], float]] = {
        "std": lambda m: m.std, "mean": lambda m: m.mean, "l2": lambda m: m.l2}
    roles = sorted({r for r, _ in layer_moments})
    for role in roles:
        curves[role] = {}
        for stat, fn in stat_of.items():
            curve: list[float | None] = [None] * arch.num_layers
            for layer in range(arch.num_layers):
                m = layer_moments.get((role, layer))
                if m is not None and m.count:
                    curve[layer] = fn(m)
            curves[role][stat] = curve
    return curves
