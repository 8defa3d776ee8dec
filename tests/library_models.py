"""Tiny fingerprints with embedding sketches, for the library tests.

:mod:`audit_models` writes attention/MLP sketches only; the library's prefilter reads the
embedding sketch, so these add one: ``VOCAB`` token strings and their embedding rows, drawn
from the same seed as the weights (an independent model), or copied with noise (derived).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modelprint.fingerprint.sketches import embedding_entry, token_sample
from tests.audit_models import copy_with_noise, weights, write_fp

VOCAB = [f"tok{i}" for i in range(600)]
HIDDEN = 96


def embedding(seed: int) -> np.ndarray:
    """A trained-looking embedding: a few shared directions plus noise per token."""
    rng = np.random.default_rng(seed + 10_000)
    basis = rng.standard_normal((8, HIDDEN))
    return rng.standard_normal((len(VOCAB), 8)) @ basis + 0.5 * rng.standard_normal(
        (len(VOCAB), HIDDEN))


def write_model(path: Path, seed: int, *, parent_seed: int | None = None,
                noise: float = 0.01, rotate: bool = False, layers: int = 4) -> Path:
    """An independent model (``parent_seed`` None) or a noisy copy of ``parent_seed``'s,
    optionally with its residual stream rotated in the embedding (a disguise)."""
    if parent_seed is None:
        w, emb = weights(seed, layers=layers, hidden=HIDDEN), embedding(seed)
    else:
        w = copy_with_noise(weights(parent_seed, layers=layers, hidden=HIDDEN), seed, noise)
        emb = embedding(parent_seed)
        emb = emb + noise * emb.std() * np.random.default_rng(seed).standard_normal(emb.shape)
    if rotate:
        q, _ = np.linalg.qr(np.random.default_rng(seed + 7).standard_normal((HIDDEN, HIDDEN)))
        emb = emb @ q
    write_fp(path, w, name=path.name)
    data = json.loads(path.read_text())
    sample = token_sample(VOCAB)
    ids = [i for _, i in sample]
    data["sketches"]["embedding"] = embedding_entry([t for t, _ in sample], emb[ids])
    data["architecture"]["vocab_size"] = len(VOCAB)
    path.write_text(json.dumps(data))
    return path
