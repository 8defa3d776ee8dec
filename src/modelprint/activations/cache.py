"""Activations on the probe, cached by content, so a warm audit runs no forward pass.

The forward pass is the expensive part of ``activation_matching`` (reading every layer's
weights -- dequantising GGUF blocks -- and the matrix products), yet its output
depends only on the model's weights and the probe token ids it reads. A second audit of the
same model (the CI re-run, another reference for the same candidate) therefore reads the
layers' gate and up activations from ``<cache dir>/activations/<key>/`` instead.

The key is a sha256 over :data:`VERSION`, the sha256 of every weight file (from the
fingerprint, which names content, not paths), the :class:`~.forward.DecoderSpec` the forward
was built from, the BOS id and the probe ids. Layers are stored as they are computed
(``layer-<i>.npz``: the recorded gate and up activations in float32, exactly what the forward
returned, and the residual stream after the layer), so an early-stopped run caches the layers
it ran, and a later run that needs more layers resumes the forward from the last stored
residual stream instead of starting again. A cached and an uncached run give the same numbers.

Files are written atomically (temp file + rename), read with ``allow_pickle=False``, and an
entry that cannot be read is recomputed and overwritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.activations.forward import DecoderSpec, LayerActivations
from modelprint.cachedir import cache_dir

#: Bump when the forward's output changes for the same weights, spec and ids.
#: ``activations-2``: the numpy forward (float32 products summed in another order than torch's).
VERSION = "activations-2"


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

    def _path(self, layer: int) -> Path | None:
        return None if self._dir is None else self._dir / f"layer-{layer}.npz"

    def _load(self, layer: int) -> tuple[LayerActivations, np.ndarray] | None:
        path = self._path(layer)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return LayerActivations(z["gate"], z["up"]), z["x"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None   # damaged or foreign: recompute and overwrite

    def _store(self, layer: int, act: LayerActivations, x: np.ndarray) -> None:
        path = self._path(layer)
        if path is None:
            return
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, gate=act.gate, up=act.up, x=x)
            os.replace(tmp, path)
        except OSError:           # a read-only or full cache costs speed, never the result
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def step(self, layer: int) -> LayerActivations:
        hit = self._load(layer)
        if hit is not None:
            self.cached_layers += 1
            return hit[0]
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
        """(next layer, residual stream) from the latest stored layer before ``layer``."""
        for i in range(layer - 1, -1, -1):
            hit = self._load(i)
            if hit is not None:
                return i + 1, hit[1]
        return None
