"""Tiny models written directly as ``*.fp.json`` fingerprints, for the plugin and CLI tests.

A fingerprint stands in for a model (CONTRACT.md), so a test can state the truth exactly and
run in milliseconds: :func:`weights` draws a model's attention matrices from a seed,
:func:`copy_with_noise` makes a derived copy (a light fine-tune), and :func:`write_fp` writes
the fingerprint the checks read (tensor hashes, std curves, weight sketches).
"""

from __future__ import annotations

import json
from pathlib import Path

import blake3
import numpy as np

from modelprint.arch.base import ArchInfo
from modelprint.fingerprint.model import Fingerprint, ModelInfo, TensorStat
from modelprint.fingerprint.sketches import SKETCH_VERSION, entry_from_matrix, slot_key

ROLES = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down")
Weights = dict[tuple[str, int], np.ndarray]


def _shape(role: str, hidden: int) -> tuple[int, int]:
    if role == "mlp.up":
        return (2 * hidden, hidden)
    if role == "mlp.down":
        return (hidden, 2 * hidden)
    return (hidden, hidden)


def weights(seed: int, *, layers: int = 8, hidden: int = 96) -> Weights:
    """An independently initialised model: each layer and role its own random std."""
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for layer in range(layers):
        for role in ROLES:
            std = 0.02 * (1.0 + 0.3 * rng.standard_normal())
            out[(role, layer)] = rng.standard_normal(_shape(role, hidden)) * abs(std)
    return out


def copy_with_noise(base: Weights, seed: int, noise: float = 0.01) -> Weights:
    """A derived copy: every matrix plus ``noise`` times its own std of Gaussian noise."""
    rng = np.random.default_rng(seed)
    return {k: w + noise * w.std() * rng.standard_normal(w.shape) for k, w in base.items()}


def write_fp(path: Path, w: Weights, name: str | None = None) -> Path:
    """Write ``w`` as a fingerprint file; returns the path."""
    layers = 1 + max(layer for _, layer in w)
    hidden = w[("attn.q", 0)].shape[0]
    arch = ArchInfo(family="llama", num_layers=layers, hidden_size=hidden, num_heads=4,
                    num_kv_heads=4, head_dim=hidden // 4, intermediate_size=2 * hidden,
                    dtype="F32", model_type="llama")
    tensors, curves, matrix = [], {}, {}
    for (role, layer), m in sorted(w.items()):
        m32 = np.ascontiguousarray(m, dtype=np.float32)
        tensors.append(TensorStat(
            role=role, layer=layer, expert=None, tensor=f"model.layers.{layer}.{role}.weight",
            shape=list(m.shape), dtype="F32", count=int(m.size), mean=float(m.mean()),
            std=float(m.std(ddof=1)), l2=float(np.linalg.norm(m)),
            blake3=blake3.blake3(m32.tobytes()).hexdigest()))
        curves.setdefault(role, {"std": [None] * layers})["std"][layer] = float(m.std(ddof=1))
        matrix[slot_key(role, layer, None)] = entry_from_matrix(m32)
    fp = Fingerprint(model=ModelInfo(reference=name or path.name, kind="fingerprint"),
                     architecture=arch, tensors=tensors, curves=curves,
                     sketches={"version": SKETCH_VERSION, "matrix": matrix})
    fp.save(path)
    json.loads(path.read_text())  # written as strict JSON
    return path


def make_zoo(directory: Path) -> dict[str, Path]:
    """``base``, ``tuned`` (a noisy copy of base) and ``other`` (independent of both)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = weights(1)
    return {
        "base": write_fp(directory / "base.fp.json", base),
        "tuned": write_fp(directory / "tuned.fp.json", copy_with_noise(base, 2)),
        "other": write_fp(directory / "other.fp.json", weights(3)),
    }
