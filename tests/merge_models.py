"""Small merge fixtures: a random tiny llama base, two perturbed "fine-tunes" of it, an
unrelated model, and merges of them with known recipes (benchmarks/merges/recipes.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig
from benchmarks.merges.io import save_state
from benchmarks.merges.recipes import State

CFG = LMConfig(family="llama", vocab=256, hidden=64, layers=4, heads=2, kv_heads=1,
               head_dim=32, ffn=128)


def random_state(seed: int) -> State:
    m = CausalLM(CFG)
    m.init_weights(seed)
    out = {k: v.float().numpy().copy() for k, v in m.hf_state().items()}
    rng = np.random.default_rng(seed)
    for k, v in out.items():
        if v.ndim == 1:   # norm gains: not all ones, as after training
            out[k] = (1.0 + 0.1 * rng.standard_normal(v.shape)).astype(np.float32)
    return out


def perturbed(state: State, seed: int, rel: float = 0.05) -> State:
    """A stand-in for a fine-tune: every tensor moved by ``rel`` of its std, at random."""
    rng = np.random.default_rng(seed)
    return {k: (v + rel * v.std() * rng.standard_normal(v.shape)).astype(np.float32)
            for k, v in state.items()}


def write(state: State, out: Path) -> Path:
    return save_state(state, CFG.to_hf(), out)
