"""The real models of shared/MODELS.md map onto the roles their architectures have."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from modelprint.arch import iter_slot_blocks, load_slot, resolve
from modelprint.sources import open_source

pytestmark = pytest.mark.real


def test_minilm_is_a_six_layer_bert(minilm_dir: Path) -> None:
    with open_source(minilm_dir) as src:
        info, slots = resolve(src)
        by = {(s.role, s.layer): s for s in slots}
        q_bias = load_slot(src, by[("attn.q_bias", 3)])
        ln = load_slot(src, by[("norm.mlp", 5)])
    assert (info.family, info.num_layers, info.num_heads, info.hidden_size) == ("bert", 6, 12, 384)
    per_layer = Counter(s.role for s in slots if s.layer is not None)
    for role in ("attn.q", "attn.k", "attn.v", "attn.o", "attn.q_bias", "attn.v_bias",
                 "norm.attn", "norm.mlp", "norm.attn_bias", "mlp.up", "mlp.down"):
        assert per_layer[role] == 6, role
    raw = load_file(str(minilm_dir / "model.safetensors"))
    np.testing.assert_array_equal(q_bias, raw["encoder.layer.3.attention.self.query.bias"])
    np.testing.assert_array_equal(ln, raw["encoder.layer.5.output.LayerNorm.weight"])


def test_smollm2_gguf_is_a_tied_gqa_llama(smollm2_gguf: Path) -> None:
    with open_source(smollm2_gguf) as src:
        info, slots = resolve(src)
        k = next(s for s in slots if s.role == "attn.k" and s.layer == 0)
        blocks = list(iter_slot_blocks(src, k))
    assert (info.family, info.num_layers, info.num_heads, info.num_kv_heads) == ("llama", 30, 9, 3)
    assert info.tied_embeddings and info.norm_offset == 0.0
    assert sum(b.shape[0] for b in blocks) == 3 * 64
    per_layer = Counter(s.role for s in slots if s.layer is not None)
    assert set(per_layer.values()) == {30}
    assert {"attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down",
            "norm.attn", "norm.mlp"} == set(per_layer)


def test_gemma3_gguf_has_four_norms_and_qk_norms(gemma3_gguf: Path) -> None:
    with open_source(gemma3_gguf) as src:
        info, slots = resolve(src)
    assert (info.family, info.num_layers) == ("gemma3", 18)
    assert info.norm_offset == 0.0      # llama.cpp already stored 1 + w
    per_layer = Counter(s.role for s in slots if s.layer is not None)
    for role in ("norm.attn", "norm.attn_post", "norm.mlp", "norm.mlp_post", "norm.q", "norm.k"):
        assert per_layer[role] == 18, role
