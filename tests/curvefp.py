"""Fingerprints built directly from curves and vectors, for the seed-check tests.

The seed checks read only ``curves`` and ``vectors``, so a test can state the truth exactly:
``recipe_curve`` models what independently trained same-recipe models share (a smooth
std-vs-depth shape) and what each model has of its own (a small layer-to-layer wiggle).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelprint.arch.base import ArchInfo
from modelprint.checks.base import ModelView
from modelprint.fingerprint.model import Fingerprint, ModelInfo

PROJ = ("attn.q", "attn.k", "attn.v", "attn.o")


def make_view(name: str, curves: dict[str, Sequence[float | None]],
              vectors: dict[str, Sequence[Sequence[float] | None]] | None = None,
              layers: int | None = None, hidden: int = 64) -> ModelView:
    n = layers if layers is not None else max(
        [len(c) for c in curves.values()] + [len(v) for v in (vectors or {}).values()])
    arch = ArchInfo(family="llama", num_layers=n, hidden_size=hidden, num_heads=4,
                    num_kv_heads=2, head_dim=hidden // 4)
    fp = Fingerprint(
        model=ModelInfo(reference=name, kind="fingerprint"), architecture=arch,
        curves={r: {"std": [None if v is None else float(v) for v in c]}
                for r, c in curves.items()},
        vectors={r: [None if v is None else [float(x) for x in v] for v in vs]
                 for r, vs in (vectors or {}).items()},
    )
    return ModelView(fp)


def recipe_curve(layers: int, rng: np.random.Generator, *, base: float = 0.02,
                 wiggle: float = 0.02) -> np.ndarray:
    """A shared smooth shape (rise plus curvature, as init scaling and training imprint on any
    pre-norm stack) times a model-specific relative wiggle of size ``wiggle``."""
    t = np.linspace(0.0, 1.0, layers)
    shape = base * (1.0 + 0.6 * t - 0.3 * t * t)
    return shape * (1.0 + wiggle * rng.standard_normal(layers))


def perturbed(curve: np.ndarray, rng: np.random.Generator, rel: float = 1e-3) -> np.ndarray:
    """A lightly fine-tuned copy's curve: each layer's std moves by a tiny relative amount."""
    return curve * (1.0 + rel * rng.standard_normal(curve.size))


def attention_curves(layers: int, rng: np.random.Generator,
                     **kw: float) -> dict[str, np.ndarray]:
    return {r: recipe_curve(layers, rng, **kw) for r in PROJ}
