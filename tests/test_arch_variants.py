"""Family variants, naming prefixes, skipped buffers, and the errors a user can hit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modelprint.arch import load_slot, resolve, supported_families
from modelprint.errors import InputError, ModelFileError, UnsupportedArchitectureError
from modelprint.sources import open_source
from tests.synth import SynthModel, make_model


def _resolve(model: SynthModel) -> tuple:
    with open_source(model.path) as src:
        info, slots = resolve(src)
        got = {(s.role, s.layer, s.expert): s for s in slots}
        assert set(got) == set(model.roles), sorted(set(got) ^ set(model.roles))[:6]
        for key, truth in model.roles.items():
            np.testing.assert_array_equal(load_slot(src, got[key]), truth, err_msg=str(key))
    return info, slots


def _rewrite_config(model: SynthModel, **changes: object) -> None:
    cfg = json.loads((model.path / "config.json").read_text())
    cfg.update(changes)
    for k, v in changes.items():
        if v is None:
            cfg.pop(k)
    (model.path / "config.json").write_text(json.dumps(cfg))


# --------------------------------------------------------------------------- variants

@pytest.mark.parametrize(("family", "overrides", "present", "absent"), [
    ("deepseek_v2", {"q_lora_rank": 16}, {"attn.q_a", "norm.q_a", "attn.q_b"}, {"attn.q"}),
    ("deepseek_v3", {"q_lora_rank": None}, {"attn.q"}, {"attn.q_a", "attn.q_b"}),
    ("deepseek_v3", {"first_k_dense_replace": 0}, {"moe.router_bias"}, {"mlp.up"}),
    ("qwen2_moe", {"mlp_only_layers": [0, 1]}, {"mlp.up"}, {"moe.router", "moe.expert.up"}),
    ("llama", {"tie_word_embeddings": True}, {"embed"}, {"lm_head"}),
    ("pangu_pro_moe", {"sandwich_norm": True}, {"norm.attn_post", "norm.mlp_post"}, set()),
])
def test_config_variants(tmp_path: Path, family: str, overrides: dict, present: set,
                         absent: set) -> None:
    info, slots = _resolve(make_model(tmp_path, family, **overrides))
    roles = {s.role for s in slots}
    assert present <= roles
    assert not (absent & roles)
    assert info.tied_embeddings == ("lm_head" not in roles)


def test_mla_layers_dense_then_moe(tmp_path: Path) -> None:
    info, slots = _resolve(make_model(tmp_path, "deepseek_v3", layers=3,
                                      first_k_dense_replace=1))
    by_layer = {i: {s.role for s in slots if s.layer == i} for i in range(3)}
    assert "mlp.gate" in by_layer[0] and "moe.router" not in by_layer[0]
    for i in (1, 2):
        assert {"moe.router", "moe.expert.gate", "moe.shared.down"} <= by_layer[i]
    assert info.head_dim == 16 + 8    # qk_nope + qk_rope


@pytest.mark.parametrize(("family", "prefix"), [("gpt2", ""), ("bert", "bert.")])
def test_optional_name_prefixes(tmp_path: Path, family: str, prefix: str) -> None:
    _resolve(make_model(tmp_path, family, prefix=prefix))


def test_gpt2_mask_buffers_are_not_biases(tmp_path: Path) -> None:
    model = make_model(tmp_path, "gpt2")
    assert "transformer.h.0.attn.bias" in model.tensors   # the synthetic file has the buffer
    _, slots = _resolve(model)
    assert all(not s.tensor.endswith(".attn.bias") for s in slots)
    q_bias = next(s for s in slots if s.role == "attn.q_bias" and s.layer == 0)
    assert q_bias.tensor.endswith("c_attn.bias")


def test_fused_splits_rebuild_the_fused_tensor(tmp_path: Path) -> None:
    """Reassembling the split parts gives back the stored fused tensor, element for element."""
    d, heads, hd = 64, 4, 16
    neox = make_model(tmp_path, "gpt_neox", dtype="BF16")
    phi = make_model(tmp_path, "phi3", dtype="F16")
    gpt2 = make_model(tmp_path, "gpt2", dtype="F32")
    with open_source(neox.path) as src:
        by = {(s.role, s.layer): s for s in resolve(src)[1]}
        q, k, v = (load_slot(src, by[(r, 1)]) for r in ("attn.q", "attn.k", "attn.v"))
    inter = np.stack([x.reshape(heads, hd, d) for x in (q, k, v)], axis=1).reshape(3 * d, d)
    fused = neox.tensors["gpt_neox.layers.1.attention.query_key_value.weight"]
    np.testing.assert_array_equal(inter, fused)
    with open_source(phi.path) as src:
        by = {(s.role, s.layer): s for s in resolve(src)[1]}
        qkv = np.concatenate([load_slot(src, by[(r, 0)]) for r in ("attn.q", "attn.k", "attn.v")])
        gate_up = np.concatenate([load_slot(src, by[(r, 0)]) for r in ("mlp.gate", "mlp.up")])
    assert qkv.shape == (d + 2 * 2 * hd, d)
    np.testing.assert_array_equal(qkv, phi.tensors["model.layers.0.self_attn.qkv_proj.weight"])
    np.testing.assert_array_equal(gate_up, phi.tensors["model.layers.0.mlp.gate_up_proj.weight"])
    with open_source(gpt2.path) as src:
        by = {(s.role, s.layer): s for s in resolve(src)[1]}
        qkv = np.concatenate([load_slot(src, by[(r, 0)]) for r in ("attn.q", "attn.k", "attn.v")])
    np.testing.assert_array_equal(qkv.T, gpt2.tensors["transformer.h.0.attn.c_attn.weight"])


def test_non_float_tensors_are_skipped(tmp_path: Path) -> None:
    model = make_model(tmp_path, "llama")
    extra = {"model.layers.0.self_attn.rotary_emb.position_ids": torch.arange(8),
             "model.layers.0.self_attn.q_proj.weight_flags": torch.ones(4, dtype=torch.bool)}
    save_file(extra, str(model.path / "extra.safetensors"))
    _resolve(model)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("model_type", ["t5", None, ""])
def test_unknown_architecture_lists_supported_families(tmp_path: Path,
                                                        model_type: str | None) -> None:
    model = make_model(tmp_path, "llama")
    _rewrite_config(model, model_type=model_type)
    with open_source(model.path) as src, pytest.raises(UnsupportedArchitectureError) as exc:
        resolve(src)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(model.path.name) in msg
    for fam in ("llama", "gpt2", "bert", "gemma3_text", "PanguProMoE", "deepseek_v3"):
        assert fam in msg
    assert ("'t5'" in msg) if model_type == "t5" else ("missing" in msg)
    assert isinstance(exc.value, InputError)


def test_family_never_guessed_from_tensor_names(tmp_path: Path) -> None:
    """Llama tensors labelled gpt2 map to nothing: an error, not a silent re-guess."""
    model = make_model(tmp_path, "llama")
    _rewrite_config(model, model_type="gpt2", n_embd=64, n_head=4, n_layer=2)
    with open_source(model.path) as src, pytest.raises(ModelFileError, match="no gpt2 tensors"):
        resolve(src)


def test_head_count_disagreeing_with_fused_rows(tmp_path: Path) -> None:
    model = make_model(tmp_path, "phi3")
    _rewrite_config(model, num_key_value_heads=4)
    with open_source(model.path) as src, pytest.raises(ModelFileError) as exc:
        resolve(src)
    assert "qkv_proj" in str(exc.value) and "rows" in str(exc.value)


@pytest.mark.parametrize(("config_layers", "match"), [(2, "have layer 2"), (4, "layer 3")])
def test_layer_count_disagreeing_with_weights(tmp_path: Path, config_layers: int,
                                              match: str) -> None:
    model = make_model(tmp_path, "qwen2", layers=3)
    _rewrite_config(model, num_hidden_layers=config_layers)
    with open_source(model.path) as src, pytest.raises(ModelFileError, match=match):
        resolve(src)


def test_deepseek_v3_prediction_layers_are_not_decoder_layers(tmp_path: Path) -> None:
    """DeepSeek-V3 stores its MTP module as layer ``num_hidden_layers``; it is dropped."""
    model = make_model(tmp_path, "deepseek_v3", layers=3)
    _rewrite_config(model, num_hidden_layers=2, num_nextn_predict_layers=1)
    with open_source(model.path) as src:
        info, slots = resolve(src)
    assert info.num_layers == 2
    assert {s.layer for s in slots if s.layer is not None} == {0, 1}


def test_supported_families_listing() -> None:
    fams = supported_families()
    assert "llama" in fams and "gptneox (GGUF)" in fams and "PanguProMoE" in fams


@pytest.mark.parametrize("prefix", ["language_model.model.", "model.language_model."])
def test_gemma3_multimodal_wrapper_uses_the_text_tower(tmp_path: Path, prefix: str) -> None:
    """Gemma 3 4B+ checkpoints nest the text config and prefix the text tower's names; the
    vision tower's look-alike names must not be taken for decoder layers."""
    from safetensors.torch import load_file

    model = make_model(tmp_path, "gemma3")
    stored = load_file(str(model.path / "model.safetensors"))
    renamed = {n.replace("model.", prefix, 1): t for n, t in stored.items()}
    renamed["model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight"] = (
        torch.zeros(8, 8))
    (model.path / "model.safetensors").unlink()
    save_file(renamed, str(model.path / "model.safetensors"))
    text = json.loads((model.path / "config.json").read_text())
    (model.path / "config.json").write_text(json.dumps(
        {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"],
         "text_config": text, "vision_config": {"model_type": "siglip_vision_model"}}))
    info, slots = _resolve(model)
    assert info.family == "gemma3" and info.norm_offset == 1.0 and info.num_layers == 2
    assert not any("vision" in s.tensor for s in slots)


@pytest.mark.parametrize(("family", "kind"), [
    ("llama", "safetensors"), ("gpt2", "safetensors"), ("qwen2_moe", "safetensors"),
    ("phi3", "safetensors"), ("llama", "gguf"), ("qwen2moe", "gguf")])
def test_column_subsets_equal_slices_of_the_whole(tmp_path: Path, family: str,
                                                  kind: str) -> None:
    """``cols`` (and ``rows`` with ``cols``) give exactly the slice of the whole HF-layout
    matrix, in the order asked, for row-major, transposed (GPT-2 Conv1D), fused (Phi-3) and
    expert storage and for GGUF (experts stacked 3-D); a column subset of a vector is
    refused."""
    from tests.synth import make_gguf

    model = (make_gguf(tmp_path, family, qtype="Q8_0") if kind == "gguf"
             else make_model(tmp_path, family, dtype="BF16"))
    rng = np.random.default_rng(0)
    checked = 0
    with open_source(model.path) as src:
        _, slots = resolve(src)
        for slot in slots:
            whole = load_slot(src, slot)
            if whole.ndim != 2:
                with pytest.raises(IndexError):
                    load_slot(src, slot, cols=np.array([0]))
                continue
            cols = rng.permutation(whole.shape[1])[: max(1, whole.shape[1] // 3)]
            rows = rng.permutation(whole.shape[0])[: max(1, whole.shape[0] // 4)]
            got = load_slot(src, slot, cols=cols)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, whole[:, cols], err_msg=str(slot))
            np.testing.assert_array_equal(load_slot(src, slot, rows=rows, cols=cols),
                                          whole[rows][:, cols], err_msg=str(slot))
            checked += 1
    assert checked >= 4
