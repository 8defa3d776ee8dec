"""Activations on the probe, cached by content, so a warm audit runs no forward pass.

The forward pass is the expensive part of ``activation_matching`` (reading every layer's
weights -- dequantising GGUF blocks -- and the matrix products), yet its output
depends only on the model's weights and the probe token ids it reads. A second audit of the
same model (the CI re-run, another reference for the same candidate) therefore reads the
layers' gate and up activations from ``<cache dir>/activations/<key>/`` instead.

The key is a sha256 over :data:`VERSION`, the sha256 of every weight file (from the
fingerprint, which names content, not paths), the :class:`~.forward.DecoderSpec` the forward
was built from, the BOS id and the probe ids. Layers are stored as they are computed
(``layer-<i>.npy``: the recorded gate and up activations stacked, float32, exactly what the
forward returned; ``layer-<i>.stream.npy``: the residual stream after the layer), so an
early-stopped run caches the layers it ran, and a later run that needs more layers resumes
the forward from the last stored residual stream instead of starting again. A cached and an
uncached run give the same numbers.

Plain ``.npy`` files, one read each, rather than one ``.npz`` per layer (``activations-2``):
a zip member is read through Python-level ``zipfile`` code with a CRC pass, and a warm audit
reads every layer of both models -- 74 layers of the SmolLM2 up-scale pair were 0.48-0.51 s
of its 0.84-0.90 s compare, the two models' reads contending for the GIL. The residual stream
is only read to resume a forward, so a warm run does not read it at all.

Files are written atomically (temp file + rename; the stream before the activations, whose
file marks the layer as stored), read with ``allow_pickle=False``, and an entry that cannot
be read or has the wrong shape is recomputed and overwritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.activations.forward import DecoderSpec, LayerActivations
from modelprint.cachedir import cache_dir

#: Bump when the forward's output changes for the same weights, spec and ids.
#: ``activations-2``: the numpy forward (float32 products summed in another order than torch's).
#: ``activations-3``: the same values in ``.npy`` files instead of one ``.npz`` per layer.
VERSION = "activations-3"


def activation_dir() -> Path:
    return cache_dir() / "activations"


def run_key(files: dict[str, str], spec: DecoderSpec, bos: int | None,
            ids: list[int]) -> str | None:
    """The content key of one model's forward on ``ids``; None when the weight files' digests
    are unknown (nothing is cached then)."""
    if not files:
        return None
    h = hashlib.sha256(f"{VERSION}\0".encode())
    h.update(json.dumps(sorted(files.items())).encode())
    h.update(repr(spec).encode())
    h.update(json.dumps([bos, list(ids)]).encode())
    return h.hexdigest()


class CachedRun:
    """A :class:`~.forward.DecoderRun` look-alike: :meth:`step` hands out a layer's activations
    from the cache when stored, else runs the forward (created on first need by ``make``,
    resumed from the last stored residual stream) and stores what it computed."""

    def __init__(self, spec: DecoderSpec, key: str | None, make: Callable[[], Any]) -> None:
        self.spec = spec
        self.key = key
        self._make = make
        self._run: Any = None
        self._at = 0                 # layers the live forward has run
        self.cached_layers = 0       # layers served from the cache (for the report)
        self._dir = activation_dir() / key if key else None

    def _path(self, layer: int, part: str = "") -> Path | None:
        return None if self._dir is None else self._dir / f"layer-{layer}{part}.npy"

    def _read(self, layer: int, part: str = "") -> np.ndarray | None:
        path = self._path(layer, part)
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, MemoryError):
            # damaged or foreign (a header whose shape cannot be allocated is MemoryError):
            # recompute and overwrite
            return None
        return arr if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" else None

    def _load(self, layer: int) -> LayerActivations | None:
        acts = self._read(layer)
        if acts is None or acts.ndim != 3 or acts.shape[0] != 2:
            return None
        return LayerActivations(acts[0], acts[1])

    def _store(self, layer: int, act: LayerActivations, x: np.ndarray) -> None:
        # the stream first: a stored activation file means the layer is complete
        if self._write(layer, ".stream", x):
            self._write(layer, "", np.stack([act.gate, act.up]))

    def _write(self, layer: int, part: str, arr: np.ndarray) -> bool:
        path = self._path(layer, part)
        if path is None:
            return False
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, path)
            return True
        except OSError:           # a read-only or full cache costs speed, never the result
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return False

    def step(self, layer: int) -> LayerActivations:
        hit = self._load(layer)
        if hit is not None:
            self.cached_layers += 1
            return hit
        return self._compute(layer)

    def _compute(self, layer: int) -> LayerActivations:
        if self._run is None or self._at > layer:
            self._run, self._at = self._make(), 0
        if self._at < layer:
            start = self._resume_point(layer)
            if start is not None and start[0] > self._at:
                self._run.set_stream(start[1])
                self._at = start[0]
        while self._at < layer:            # layers neither stored nor asked for (rare)
            self._run.step(self._at, record=False)
            self._at += 1
        act = self._run.step(layer)
        self._at = layer + 1
        self._store(layer, act, self._run.stream())
        return act

    def _resume_point(self, layer: int) -> tuple[int, np.ndarray] | None:
        """(next layer, residual stream) from the latest stored stream before ``layer`` (the
        layers it resumes after are read from their own files)."""
        for i in range(layer - 1, -1, -1):
            x = self._read(i, ".stream")
            if x is not None and x.ndim == 2:
                return i + 1, x
        return None
