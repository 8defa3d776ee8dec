"""GGUF files: GGUF names map to the same roles, in HF layout, with llama.cpp's conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelprint.arch import load_slot, resolve
from modelprint.sources import open_source
from tests.synth import make_model
from tests.synth_gguf import CLASSIC_ARCHS, GGUF_ARCHS, make_gguf, permute_rows, unpermute_rows

K_QUANTS = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")


def _check(model_path: Path, roles: dict, *, rtol: float = 0.0) -> tuple:
    with open_source(model_path) as src:
        info, slots = resolve(src)
        got = {(s.role, s.layer, s.expert): s for s in slots}
        assert set(got) == set(roles), (sorted(set(roles) ^ set(got))[:6])
        for key, truth in roles.items():
            values = load_slot(src, got[key])
            assert values.shape == truth.shape == tuple(got[key].extra["shape"]), key
            np.testing.assert_allclose(values, truth, rtol=rtol, atol=0, err_msg=str(key))
    return info, slots


@pytest.mark.parametrize("arch", GGUF_ARCHS)
@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0", "Q4_0"])
def test_gguf_roles_equal_ground_truth(tmp_path: Path, arch: str, qtype: str) -> None:
    model = make_gguf(tmp_path, arch, qtype)
    info, _ = _check(model.path, model.roles)
    assert info.num_layers == 2
    assert info.num_heads == 4
    assert info.num_kv_heads == (4 if arch in (*CLASSIC_ARCHS, "deepseek2") else 2)
    assert info.model_type == arch
    assert info.norm_offset == 0.0   # llama.cpp stores Gemma norms as 1 + w already


@pytest.mark.parametrize("qtype", ["BF16", "Q4_1", "Q5_0", "Q5_1", *K_QUANTS])
def test_gguf_other_quant_types(tmp_path: Path, qtype: str) -> None:
    model = make_gguf(tmp_path, "llama", qtype, hidden=256, intermediate=512, heads=4,
                      kv_heads=2, vocab=32)
    info, _ = _check(model.path, model.roles)
    assert info.dtype == qtype


def test_gguf_moe_experts_are_one_slot_each(tmp_path: Path) -> None:
    model = make_gguf(tmp_path, "llama", "Q8_0", experts=3)
    info, slots = _check(model.path, model.roles)
    assert info.num_experts == 3
    ups = [s for s in slots if s.role == "moe.expert.up" and s.layer == 1]
    assert sorted(s.expert for s in ups) == [0, 1, 2]
    assert {s.tensor for s in ups} == {"blk.1.ffn_up_exps.weight"}


def test_gguf_family_names(tmp_path: Path) -> None:
    with open_source(make_gguf(tmp_path, "qwen2moe").path) as src:
        info, slots = resolve(src)
    assert info.family == "qwen2_moe"
    assert {"moe.shared.up", "moe.shared.router", "moe.router"} <= {s.role for s in slots}


def test_permutation_helpers_are_inverse() -> None:
    w = np.arange(8 * 3 * 5).reshape(8 * 3, 5).astype(np.float64)
    p = permute_rows(w, 3)
    assert not np.array_equal(p, w)
    np.testing.assert_array_equal(unpermute_rows(p, 3), w)


def test_gemma_gguf_norms_are_hf_norms_plus_one(tmp_path: Path) -> None:
    """The same Gemma 3 norms, as HF (offset 1.0, stored w) and as GGUF (offset 0, stored
    1 + w): effective scale offset + stored must agree."""
    hf = make_model(tmp_path, "gemma3", dtype="F32")
    gg = make_gguf(tmp_path, "gemma3", "F32")
    with open_source(hf.path) as src:
        hf_info, _ = resolve(src)
    with open_source(gg.path) as src:
        gg_info, _ = resolve(src)
    assert hf_info.norm_offset == 1.0 and gg_info.norm_offset == 0.0
    # The synthetic GGUF draws norms around 0 and stores 1 + w, as llama.cpp does.
    stored = gg.roles[("norm.attn", 0, None)]
    assert abs(stored.mean() - 1.0) < 0.2
