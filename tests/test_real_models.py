"""Fingerprints of the real models of shared/MODELS.md (installed by ``make test``).

Facts checked here are the ones later checks lean on: layer counts and roles per family,
Gemma 3's flat q/k/v std, and SmolLM2's GGUF q/k rows put back in the Hugging Face order.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch

from modelprint.fingerprint.model import Fingerprint
from modelprint.models import load_model

pytestmark = pytest.mark.real

ATTN = ("attn.q", "attn.k", "attn.v", "attn.o")


def _present(fp: Fingerprint, role: str) -> int:
    curve = fp.curves.get(role, {}).get("std", [])
    return sum(v is not None for v in curve)


def _roles(fp: Fingerprint) -> set[str]:
    return {t.role for t in fp.tensors}


def test_minilm(minilm_dir: Path) -> None:
    fp = load_model(minilm_dir).fingerprint
    a = fp.architecture
    assert (a.family, a.num_layers, a.hidden_size, a.num_heads) == ("bert", 6, 384, 12)
    per_layer = {*ATTN, "attn.q_bias", "attn.k_bias", "attn.v_bias", "attn.o_bias",
                 "norm.attn", "norm.mlp", "mlp.up", "mlp.down"}
    for role in per_layer:
        assert _present(fp, role) == 6, role
    assert "embed" in _roles(fp)
    assert "mlp.gate" not in _roles(fp)  # BERT's MLP has no gate
    bias = fp.vector("attn.q_bias", 5)
    assert bias is not None and len(bias) == 384
    assert {t.dtype for t in fp.tensors} == {"F32"}


def test_smollm2(smollm2_gguf: Path) -> None:
    fp = load_model(smollm2_gguf).fingerprint
    a = fp.architecture
    assert (a.family, a.num_layers, a.hidden_size, a.num_heads, a.num_kv_heads) == (
        "llama", 30, 576, 9, 3)
    for role in (*ATTN, "norm.attn", "norm.mlp", "mlp.gate", "mlp.up", "mlp.down"):
        assert _present(fp, role) == 30, role
    assert not any(r.endswith("_bias") for r in _roles(fp))
    shapes = {(t.role, t.layer): t.shape for t in fp.tensors}
    assert shapes[("attn.q", 0)] == [576, 576] and shapes[("attn.k", 0)] == [192, 576]
    norm = fp.vector("norm.attn", 29)
    assert norm is not None and len(norm) == 576
    assert fp.model.kind == "gguf" and len(fp.model.files) == 1


def test_gemma3(gemma3_gguf: Path) -> None:
    fp = load_model(gemma3_gguf).fingerprint
    a = fp.architecture
    assert (a.family, a.num_layers, a.hidden_size, a.num_heads, a.num_kv_heads, a.head_dim) == (
        "gemma3", 18, 640, 4, 1, 256)
    for role in (*ATTN, "norm.attn", "norm.mlp", "norm.attn_post", "norm.mlp_post",
                 "norm.q", "norm.k", "mlp.gate", "mlp.up", "mlp.down"):
        assert _present(fp, role) == 18, role
    qn = fp.vector("norm.q", 0)
    assert qn is not None and len(qn) == 256


def test_gemma3_qkv_std_is_one_over_sqrt_hidden(gemma3_gguf: Path) -> None:
    """MODELS.md: Gemma 3's q/k/v std is 1/sqrt(640) in every layer. Measured on the
    Q4_K_M file it holds up to quantisation noise, which only adds variance: within 1e-4
    relative for the Q8_0-stored tensors, within 2e-3 for the coarser Q5_0 ones -- so the
    curves are flat and a curve-correlation check must say "no information" on them."""
    fp = load_model(gemma3_gguf).fingerprint
    target = 1 / math.sqrt(640)
    slots = [t for t in fp.tensors if t.role in ("attn.q", "attn.k", "attn.v")]
    assert len(slots) == 3 * 18
    for t in slots:
        rel = t.std / target - 1
        assert -1e-5 < rel < (1e-4 if t.dtype == "Q8_0" else 2e-3), (t.role, t.layer, t.dtype)
    # other projections are not pinned to it: the fact is specific to q/k/v
    o = [v for v in fp.curves["attn.o"]["std"] if v is not None]
    assert max(abs(v / target - 1) for v in o) > 0.01


def _independent_unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores each head's rows interleaved (pairs of the two rotary halves):
    GGUF row h*hd + j holds HF row h*hd + (j % 2) * hd/2 + j // 2."""
    rows = w.shape[0]
    hd = rows // n_head
    out = np.empty_like(w)
    for h in range(n_head):
        for j in range(hd):
            out[h * hd + (j % 2) * (hd // 2) + j // 2] = w[h * hd + j]
    return out


@pytest.fixture(scope="module")
def smollm2_raw(smollm2_gguf: Path) -> dict[str, object]:
    """The stored tensors as the gguf package reads them (no modelprint code involved)."""
    return {t.name: t for t in gguf.GGUFReader(str(smollm2_gguf)).tensors}


@pytest.mark.parametrize("layer", [0, 17, 29])
def test_smollm2_qk_unpermutation(smollm2_gguf: Path, smollm2_raw: dict[str, object],
                                  layer: int) -> None:
    view = load_model(smollm2_gguf, weights=True)
    assert view.weights is not None
    raw: dict[str, Any] = smollm2_raw
    for role, name, heads in (("attn.q", f"blk.{layer}.attn_q.weight", 9),
                              ("attn.k", f"blk.{layer}.attn_k.weight", 3)):
        t = raw[name]
        stored = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64)
        stored = stored.reshape(int(t.shape[1]), int(t.shape[0]))
        expected = _independent_unpermute(stored, heads)
        assert not np.array_equal(expected, stored)  # the permutation is not a no-op here
        got = view.weights.get(role, layer)
        assert got is not None
        np.testing.assert_array_equal(got.astype(np.float64), expected)
        stat = next(s for s in view.fingerprint.tensors if (s.role, s.layer) == (role, layer))
        ref = torch.from_numpy(expected)
        assert stat.std == pytest.approx(ref.std().item(), rel=1e-10)
        assert stat.l2 == pytest.approx(torch.linalg.vector_norm(ref).item(), rel=1e-10)
