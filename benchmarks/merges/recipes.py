"""Merge recipes on Hugging Face state dicts (name -> float32 array), after mergekit's
published definitions (docs and ``merge_methods``): the ground truth of the merge benchmark.

* ``linear``: ``sum w_i P_i`` (weights normalised to sum 1, mergekit's ``normalize: true``
  default for linear);
* ``slerp``: two models, ``v0`` the base model, per tensor
  ``sin((1-t) theta)/sin theta * v0 + sin(t theta)/sin theta * v1`` with ``theta`` the angle
  of the flattened tensors, plain lerp when ``|cos theta| > 0.9995``;
* ``task_arithmetic``: ``B + sum w_i (P_i - B)``;
* ``ties``: each task vector trimmed to its top ``density`` fraction by magnitude, a sign
  elected per entry (sign of the summed weighted deltas), the agreeing weighted deltas summed
  and divided by the agreeing weights (``normalize: true``);
* ``dare_ties`` / ``dare_linear``: each task vector's entries kept with probability
  ``density`` and rescaled by ``1/density``; with / without the sign election, not
  normalised.

Any weight (``t`` for slerp) may be a per-layer list: tensor ``model.layers.{i}.*`` takes
element ``i``, model-level tensors (embeddings, final norm) the mean (mergekit interpolates
a gradient over the layers; giving one value per layer pins it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

State = dict[str, np.ndarray]
Weight = float | Sequence[float]

_LAYER = re.compile(r"\.layers\.(\d+)\.")


def at(w: Weight, name: str) -> float:
    """The weight that applies to tensor ``name``."""
    if isinstance(w, (int, float)):
        return float(w)
    m = _LAYER.search(name)
    return float(w[int(m.group(1))]) if m else float(np.mean(w))


def linear(parents: Sequence[State], weights: Sequence[Weight]) -> State:
    out: State = {}
    for k in parents[0]:
        ws = np.array([at(w, k) for w in weights], dtype=np.float64)
        ws = ws / ws.sum()
        out[k] = sum(wi * p[k].astype(np.float64) for wi, p in zip(ws, parents, strict=True)
                     ).astype(np.float32)
    return out


def slerp_tensor(t: float, v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    a, b = v0.astype(np.float64), v1.astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    dot = float(np.sum(a * b) / max(na * nb, 1e-300)) if na > 0 and nb > 0 else 1.0
    if abs(dot) > 0.9995:
        return ((1 - t) * a + t * b).astype(np.float32)
    theta = np.arccos(dot)
    s = np.sin(theta)
    return (np.sin((1 - t) * theta) / s * a + np.sin(t * theta) / s * b).astype(np.float32)


def lerped_fraction(v0: State, v1: State) -> float:
    """Share of the parameters (by count) in tensors where mergekit's slerp falls back to
    linear interpolation (|cos theta| > 0.9995): there a slerp merge *is* a linear one."""
    lerped = total = 0
    for k, a in v0.items():
        x, y = a.astype(np.float64).ravel(), v1[k].astype(np.float64).ravel()
        den = np.linalg.norm(x) * np.linalg.norm(y)
        dot = float(x @ y / den) if den > 0 else 1.0
        total += x.size
        lerped += x.size if abs(dot) > 0.9995 else 0
    return lerped / max(total, 1)


def slerp(v0: State, v1: State, t: Weight) -> State:
    return {k: slerp_tensor(at(t, k), v0[k], v1[k]) for k in v0}


def task_arithmetic(base: State, parents: Sequence[State], weights: Sequence[Weight]) -> State:
    out: State = {}
    for k, b in base.items():
        b64 = b.astype(np.float64)
        out[k] = (b64 + sum(at(w, k) * (p[k].astype(np.float64) - b64)
                            for w, p in zip(weights, parents, strict=True))).astype(np.float32)
    return out


def _trim(delta: np.ndarray, density: float) -> np.ndarray:
    k = int(density * delta.size)
    if k <= 0:
        return np.zeros_like(delta)
    flat = np.abs(delta).ravel()
    thresh = np.partition(flat, flat.size - k)[flat.size - k]
    return np.where(np.abs(delta) >= thresh, delta, 0.0)


def _drop(delta: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    keep = rng.random(delta.shape) < density
    return np.where(keep, delta / density, 0.0)


def sparse_merge(base: State, parents: Sequence[State], weights: Sequence[Weight],
                 density: float, method: str, seed: int = 0) -> State:
    """``ties``, ``dare_ties`` or ``dare_linear``."""
    rng = np.random.default_rng(seed)
    out: State = {}
    for k, b in base.items():
        b64 = b.astype(np.float64)
        ws = np.array([at(w, k) for w in weights])
        deltas = []
        for p in parents:
            d = p[k].astype(np.float64) - b64
            deltas.append(_trim(d, density) if method == "ties" else _drop(d, density, rng))
        wd = np.stack(deltas) * ws.reshape(-1, *([1] * b.ndim))
        if method in ("ties", "dare_ties"):
            elected = np.where(wd.sum(axis=0) >= 0, 1.0, -1.0)
            mask = np.sign(wd) == elected
            mixed = (wd * mask).sum(axis=0)
            if method == "ties":
                div = (ws.reshape(-1, *([1] * b.ndim)) * mask).sum(axis=0)
                mixed = mixed / np.where(div == 0, 1.0, div)
        else:
            mixed = wd.sum(axis=0)
        out[k] = (b64 + mixed).astype(np.float32)
    return out
