"""Tiny synthetic checkpoints for every supported family, with their ground truth.

``make_model`` writes a Hugging Face directory (``config.json`` with the family's real
``model_type`` and field names, safetensors with the real tensor names, shapes and dtypes,
``tokenizer.json``) and returns, next to the path, ``roles[(role, layer, expert)]``: the float64
values every canonical role must read back as, in the HF ``(out, in)`` layout. Fused tensors
(GPT-2 ``c_attn``, NeoX ``query_key_value``, Phi-3 ``qkv_proj``/``gate_up_proj``) are *built
from* the separate parts recorded in ``roles``, so a correct split must reproduce them exactly.
``make_gguf`` (in :mod:`synth_gguf`) does the same for GGUF files written with
``gguf.GGUFWriter``.

Values are drawn as float32, rounded to the stored dtype, and the ground truth is the float64
of the rounded value, so comparisons can be exact. Each role gets its own std that grows with
the layer index, so per-layer curves are not flat.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

RoleKey = tuple[str, "int | None", "int | None"]

TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
CONFIG_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}

FAMILIES: tuple[str, ...] = (
    "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gpt2", "bert",
    "gpt_neox", "phi3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3",
    "pangu_pro_moe",
)
MOE_FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "pangu_pro_moe")
GEMMA_FAMILIES = ("gemma", "gemma2", "gemma3")


@dataclass
class SynthModel:
    """A written synthetic model. ``tensors`` holds every stored float tensor as float64 in its
    *stored* layout (before any split/transpose); ``roles`` the HF-layout ground truth."""

    path: Path
    config: dict[str, Any]
    roles: dict[tuple[str, int | None, int | None], np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    family: str = ""
    dtype: str = "F32"
    files: list[Path] = field(default_factory=list)


def role_std(role: str, layer: int | None) -> float:
    """A per-role, per-layer std: deterministic and distinct, so curves have shape."""
    base = 0.01 + (zlib.crc32(role.encode()) % 97) / 97 * 0.04
    return base * (1.0 + 0.35 * (layer or 0))


class _Builder:
    """Collects stored tensors (in write order) and the ground truth of each role."""

    def __init__(self, dtype: str, seed: int, family: str) -> None:
        if dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(TORCH_DTYPES)}, not {dtype!r}")
        self.tdtype = TORCH_DTYPES[dtype]
        self.rng = np.random.default_rng(seed)
        self.stored: dict[str, torch.Tensor] = {}
        self.roles: dict[tuple[str, int | None, int | None], np.ndarray] = {}
        self.gemma = family in GEMMA_FAMILIES

    def values(self, shape: Sequence[int], role: str, layer: int | None) -> torch.Tensor:
        """Random values for a role, rounded to the stored dtype."""
        if role.startswith("norm.") and not role.endswith("_bias"):
            mean, std = (0.0, 0.1) if self.gemma else (1.0, 0.1 * (1 + 0.2 * (layer or 0)))
        else:
            mean, std = 0.0, role_std(role, layer)
        x = self.rng.standard_normal(tuple(shape)).astype(np.float32) * np.float32(std)
        return torch.from_numpy(x + np.float32(mean)).to(self.tdtype)

    def record(self, role: str | None, layer: int | None, expert: int | None,
               t: torch.Tensor) -> None:
        if role is not None:
            key = (role, layer, expert)
            assert key not in self.roles, key
            self.roles[key] = t.to(torch.float64).numpy().copy()

    def add(self, name: str, shape: Sequence[int], role: str | None, layer: int | None = None,
            expert: int | None = None, *, transpose: bool = False) -> torch.Tensor:
        """A tensor whose HF-layout values are ``role``; ``transpose`` stores it (in, out)."""
        t = self.values(shape, role or name, layer)
        self.record(role, layer, expert, t)
        self.stored[name] = (t.t() if transpose else t).contiguous()
        return t

    def fused(self, name: str, parts: Sequence[tuple[str, Sequence[int]]], layer: int | None,
              *, transpose: bool = False, per_head: tuple[int, int] | None = None) -> None:
        """Concatenate parts along axis 0 (HF layout). ``per_head=(heads, head_dim)``
        interleaves them NeoX style: (heads, n_parts, head_dim, ...). ``transpose`` stores the
        result (in, out) like GPT-2's Conv1D."""
        ts = []
        for role, shape in parts:
            t = self.values(shape, role, layer)
            self.record(role, layer, None, t)
            ts.append(t)
        if per_head is not None:
            heads, hd = per_head
            rest = tuple(ts[0].shape[1:])
            stacked = torch.stack([t.reshape(heads, hd, *rest) for t in ts], dim=1)
            full = stacked.reshape(heads * len(ts) * hd, *rest)
        else:
            full = torch.cat(ts, dim=0)
        if transpose:
            full = full.t()
        self.stored[name] = full.contiguous()

    def mask(self, name: str, n: int, dtype: torch.dtype | None = None) -> None:
        """A causal-mask buffer (GPT-2 ``attn.bias``, NeoX ``attention.bias``): not a weight."""
        m = torch.tril(torch.ones(n, n)).reshape(1, 1, n, n)
        self.stored[name] = m.to(dtype or self.tdtype).contiguous()


def _tokens(vocab: int) -> list[str]:
    special = ["<unk>", "<s>", "</s>"]
    return (special + [f"w{i:04d}" for i in range(max(0, vocab - len(special)))])[:vocab]


def write_tokenizer(path: Path, vocab: int) -> list[str]:
    """A minimal WordLevel tokenizer.json: enough for vocabulary comparisons."""
    toks = _tokens(vocab)
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for i, t in enumerate(toks[:3])],
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(toks)},
                  "unk_token": "<unk>"},
    }
    (path / "tokenizer.json").write_text(json.dumps(tok))
    return toks


# --------------------------------------------------------------------------- families

def _mlp(b: _Builder, p: str, layer: int, d: int, ff: int, *, expert: int | None = None,
         roles: tuple[str, str, str] = ("mlp.gate", "mlp.up", "mlp.down"),
         names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> None:
    b.add(p + names[0] + ".weight", (ff, d), roles[0], layer, expert)
    b.add(p + names[1] + ".weight", (ff, d), roles[1], layer, expert)
    b.add(p + names[2] + ".weight", (d, ff), roles[2], layer, expert)


def _experts(b: _Builder, p: str, layer: int, d: int, ff: int, n: int,
             names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> None:
    for e in range(n):
        _mlp(b, f"{p}{e}.", layer, d, ff, expert=e, names=names,
             roles=("moe.expert.gate", "moe.expert.up", "moe.expert.down"))


def _attn(b: _Builder, p: str, layer: int, c: dict[str, Any], *, qkv_bias: bool = False,
          o_bias: bool = False, qk_norm: bool = False) -> None:
    d, h, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or d // h
    shapes = (("q", "attn.q", h * hd), ("k", "attn.k", kv * hd), ("v", "attn.v", kv * hd))
    for n, role, rows in shapes:
        b.add(f"{p}{n}_proj.weight", (rows, d), role, layer)
        if qkv_bias:
            b.add(f"{p}{n}_proj.bias", (rows,), role + "_bias", layer)
    b.add(f"{p}o_proj.weight", (d, h * hd), "attn.o", layer)
    if o_bias:
        b.add(f"{p}o_proj.bias", (d,), "attn.o_bias", layer)
    if qk_norm:
        b.add(f"{p}q_norm.weight", (hd,), "norm.q", layer)
        b.add(f"{p}k_norm.weight", (hd,), "norm.k", layer)


def _decoder(b: _Builder, fam: str, c: dict[str, Any]) -> None:
    """Every ``model.layers.N`` family (llama lineage, Gemma, Phi-3, the MoEs, DeepSeek)."""
    d, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    b.add("model.embed_tokens.weight", (V, d), "embed")
    for i in range(L):
        p = f"model.layers.{i}."
        b.add(p + "input_layernorm.weight", (d,), "norm.attn", i)
        if fam == "phi3":
            h, kv = c["num_attention_heads"], c["num_key_value_heads"]
            hd = d // h
            b.fused(p + "self_attn.qkv_proj.weight", [("attn.q", (h * hd, d)),
                    ("attn.k", (kv * hd, d)), ("attn.v", (kv * hd, d))], i)
            b.add(p + "self_attn.o_proj.weight", (d, h * hd), "attn.o", i)
        elif fam.startswith("deepseek"):
            _mla(b, p + "self_attn.", i, c)
        else:
            _attn(b, p + "self_attn.", i, c,
                  qkv_bias=fam in ("qwen2", "qwen2_moe", "pangu_pro_moe"),
                  o_bias=fam == "pangu_pro_moe",
                  qk_norm=fam in ("qwen3", "qwen3_moe", "gemma3"))
        if fam in ("gemma2", "gemma3"):
            b.add(p + "post_attention_layernorm.weight", (d,), "norm.attn_post", i)
            b.add(p + "pre_feedforward_layernorm.weight", (d,), "norm.mlp", i)
            b.add(p + "post_feedforward_layernorm.weight", (d,), "norm.mlp_post", i)
        elif fam == "pangu_pro_moe" and c.get("sandwich_norm"):
            b.add(p + "post_attention_layernorm.weight", (d,), "norm.attn_post", i)
            b.add(p + "pre_mlp_layernorm.weight", (d,), "norm.mlp", i)
            b.add(p + "post_mlp_layernorm.weight", (d,), "norm.mlp_post", i)
        else:
            b.add(p + "post_attention_layernorm.weight", (d,), "norm.mlp", i)
        _ffn(b, fam, p, i, c)
    b.add("model.norm.weight", (d,), "norm.final")
    if not c.get("tie_word_embeddings", False):
        b.add("lm_head.weight", (V, d), "lm_head")


def _ffn(b: _Builder, fam: str, p: str, i: int, c: dict[str, Any]) -> None:
    d = c["hidden_size"]
    if fam == "phi3":
        ff = c["intermediate_size"]
        b.fused(p + "mlp.gate_up_proj.weight", [("mlp.gate", (ff, d)), ("mlp.up", (ff, d))], i)
        b.add(p + "mlp.down_proj.weight", (d, ff), "mlp.down", i)
    elif fam == "mixtral":
        E = c["num_local_experts"]
        b.add(p + "block_sparse_moe.gate.weight", (E, d), "moe.router", i)
        _experts(b, p + "block_sparse_moe.experts.", i, d, c["intermediate_size"], E,
                 names=("w1", "w3", "w2"))
    elif fam in ("qwen2_moe", "qwen3_moe"):
        if i in c.get("mlp_only_layers", []):
            _mlp(b, p + "mlp.", i, d, c["intermediate_size"])
            return
        E = c["num_experts"]
        b.add(p + "mlp.gate.weight", (E, d), "moe.router", i)
        _experts(b, p + "mlp.experts.", i, d, c["moe_intermediate_size"], E)
        if fam == "qwen2_moe":
            _mlp(b, p + "mlp.shared_expert.", i, d, c["shared_expert_intermediate_size"],
                 roles=("moe.shared.gate", "moe.shared.up", "moe.shared.down"))
            b.add(p + "mlp.shared_expert_gate.weight", (1, d), "moe.shared.router", i)
    elif fam.startswith("deepseek"):
        if i < c["first_k_dense_replace"]:
            _mlp(b, p + "mlp.", i, d, c["intermediate_size"])
            return
        E, ff = c["n_routed_experts"], c["moe_intermediate_size"]
        b.add(p + "mlp.gate.weight", (E, d), "moe.router", i)
        if fam == "deepseek_v3":
            b.add(p + "mlp.gate.e_score_correction_bias", (E,), "moe.router_bias", i)
        _experts(b, p + "mlp.experts.", i, d, ff, E)
        _mlp(b, p + "mlp.shared_experts.", i, d, ff * c["n_shared_experts"],
             roles=("moe.shared.gate", "moe.shared.up", "moe.shared.down"))
    elif fam == "pangu_pro_moe":
        E = c["num_experts"]
        b.add(p + "mlp.gate.weight", (E, d), "moe.router", i)
        b.add(p + "mlp.router_scale", (1, E), "moe.router_scale", i)
        _experts(b, p + "mlp.experts.", i, d, c["moe_intermediate_size"], E)
        _mlp(b, p + "mlp.shared_expert.", i, d, c["shared_expert_intermediate_size"],
             roles=("moe.shared.gate", "moe.shared.up", "moe.shared.down"))
    else:
        _mlp(b, p + "mlp.", i, d, c["intermediate_size"])


def _mla(b: _Builder, p: str, i: int, c: dict[str, Any]) -> None:
    """DeepSeek multi-head latent attention: every projection is its own role."""
    d, h = c["hidden_size"], c["num_attention_heads"]
    nope, rope, vd = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    qr, kvr = c["q_lora_rank"], c["kv_lora_rank"]
    if qr is None:
        b.add(p + "q_proj.weight", (h * (nope + rope), d), "attn.q", i)
    else:
        b.add(p + "q_a_proj.weight", (qr, d), "attn.q_a", i)
        b.add(p + "q_a_layernorm.weight", (qr,), "norm.q_a", i)
        b.add(p + "q_b_proj.weight", (h * (nope + rope), qr), "attn.q_b", i)
    b.add(p + "kv_a_proj_with_mqa.weight", (kvr + rope, d), "attn.kv_a", i)
    b.add(p + "kv_a_layernorm.weight", (kvr,), "norm.kv_a", i)
    b.add(p + "kv_b_proj.weight", (h * (nope + vd), kvr), "attn.kv_b", i)
    b.add(p + "o_proj.weight", (d, h * vd), "attn.o", i)


def _gpt2(b: _Builder, c: dict[str, Any], pre: str) -> None:
    d, L, V, npos = c["n_embd"], c["n_layer"], c["vocab_size"], c["n_positions"]
    ff = c["n_inner"] or 4 * d
    b.add(pre + "wte.weight", (V, d), "embed")
    b.add(pre + "wpe.weight", (npos, d), "embed.pos")
    for i in range(L):
        p = f"{pre}h.{i}."
        b.add(p + "ln_1.weight", (d,), "norm.attn", i)
        b.add(p + "ln_1.bias", (d,), "norm.attn_bias", i)
        b.mask(p + "attn.bias", npos)
        b.fused(p + "attn.c_attn.weight", [("attn.q", (d, d)), ("attn.k", (d, d)),
                                           ("attn.v", (d, d))], i, transpose=True)
        b.fused(p + "attn.c_attn.bias", [("attn.q_bias", (d,)), ("attn.k_bias", (d,)),
                                         ("attn.v_bias", (d,))], i)
        b.add(p + "attn.c_proj.weight", (d, d), "attn.o", i, transpose=True)
        b.add(p + "attn.c_proj.bias", (d,), "attn.o_bias", i)
        b.add(p + "ln_2.weight", (d,), "norm.mlp", i)
        b.add(p + "ln_2.bias", (d,), "norm.mlp_bias", i)
        b.add(p + "mlp.c_fc.weight", (ff, d), "mlp.up", i, transpose=True)
        b.add(p + "mlp.c_fc.bias", (ff,), "mlp.up_bias", i)
        b.add(p + "mlp.c_proj.weight", (d, ff), "mlp.down", i, transpose=True)
        b.add(p + "mlp.c_proj.bias", (d,), "mlp.down_bias", i)
    b.add(pre + "ln_f.weight", (d,), "norm.final")
    b.add(pre + "ln_f.bias", (d,), "norm.final_bias")


def _bert(b: _Builder, c: dict[str, Any], pre: str) -> None:
    d, L, V, ff = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    e = pre + "embeddings."
    b.add(e + "word_embeddings.weight", (V, d), "embed")
    b.add(e + "position_embeddings.weight", (c["max_position_embeddings"], d), "embed.pos")
    b.add(e + "token_type_embeddings.weight", (c["type_vocab_size"], d), "embed.type")
    b.add(e + "LayerNorm.weight", (d,), "norm.embed")
    b.add(e + "LayerNorm.bias", (d,), "norm.embed_bias")
    for i in range(L):
        p = f"{pre}encoder.layer.{i}."
        for n, role in (("query", "attn.q"), ("key", "attn.k"), ("value", "attn.v")):
            b.add(f"{p}attention.self.{n}.weight", (d, d), role, i)
            b.add(f"{p}attention.self.{n}.bias", (d,), role + "_bias", i)
        b.add(p + "attention.output.dense.weight", (d, d), "attn.o", i)
        b.add(p + "attention.output.dense.bias", (d,), "attn.o_bias", i)
        b.add(p + "attention.output.LayerNorm.weight", (d,), "norm.attn", i)
        b.add(p + "attention.output.LayerNorm.bias", (d,), "norm.attn_bias", i)
        b.add(p + "intermediate.dense.weight", (ff, d), "mlp.up", i)
        b.add(p + "intermediate.dense.bias", (ff,), "mlp.up_bias", i)
        b.add(p + "output.dense.weight", (d, ff), "mlp.down", i)
        b.add(p + "output.dense.bias", (d,), "mlp.down_bias", i)
        b.add(p + "output.LayerNorm.weight", (d,), "norm.mlp", i)
        b.add(p + "output.LayerNorm.bias", (d,), "norm.mlp_bias", i)
    b.add(pre + "pooler.dense.weight", (d, d), "pooler")
    b.add(pre + "pooler.dense.bias", (d,), "pooler_bias")


def _neox(b: _Builder, c: dict[str, Any]) -> None:
    d, L, V, h = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["num_attention_heads"]
    ff, hd = c["intermediate_size"], d // h
    b.add("gpt_neox.embed_in.weight", (V, d), "embed")
    for i in range(L):
        p = f"gpt_neox.layers.{i}."
        b.add(p + "input_layernorm.weight", (d,), "norm.attn", i)
        b.add(p + "input_layernorm.bias", (d,), "norm.attn_bias", i)
        b.add(p + "post_attention_layernorm.weight", (d,), "norm.mlp", i)
        b.add(p + "post_attention_layernorm.bias", (d,), "norm.mlp_bias", i)
        b.mask(p + "attention.bias", 16, torch.bool)
        b.fused(p + "attention.query_key_value.weight", [("attn.q", (d, d)), ("attn.k", (d, d)),
                ("attn.v", (d, d))], i, per_head=(h, hd))
        b.fused(p + "attention.query_key_value.bias", [("attn.q_bias", (d,)),
                ("attn.k_bias", (d,)), ("attn.v_bias", (d,))], i, per_head=(h, hd))
        b.add(p + "attention.dense.weight", (d, d), "attn.o", i)
        b.add(p + "attention.dense.bias", (d,), "attn.o_bias", i)
        b.add(p + "mlp.dense_h_to_4h.weight", (ff, d), "mlp.up", i)
        b.add(p + "mlp.dense_h_to_4h.bias", (ff,), "mlp.up_bias", i)
        b.add(p + "mlp.dense_4h_to_h.weight", (d, ff), "mlp.down", i)
        b.add(p + "mlp.dense_4h_to_h.bias", (d,), "mlp.down_bias", i)
    b.add("gpt_neox.final_layer_norm.weight", (d,), "norm.final")
    b.add("gpt_neox.final_layer_norm.bias", (d,), "norm.final_bias")
    b.add("embed_out.weight", (V, d), "lm_head")


# --------------------------------------------------------------------------- configs

def make_config(family: str, *, layers: int, hidden: int, heads: int, kv_heads: int, vocab: int,
                intermediate: int | None, experts: int | None, dtype: str,
                overrides: dict[str, Any]) -> dict[str, Any]:
    """The family's config.json, with its real field names."""
    if family not in FAMILIES:
        raise ValueError(f"unknown synthetic family {family!r}; known: {', '.join(FAMILIES)}")
    ff = intermediate or 2 * hidden
    E = experts or 4
    if experts is not None and family not in MOE_FAMILIES:
        raise ValueError(f"{family} has no experts")
    common = {"torch_dtype": CONFIG_DTYPES[dtype], "vocab_size": vocab}
    llama_like = {"hidden_size": hidden, "intermediate_size": ff, "num_hidden_layers": layers,
                  "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                  "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
                  "max_position_embeddings": 256, "hidden_act": "silu"}
    arch_names = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                  "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                  "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
                  "gemma3": "Gemma3ForCausalLM", "phi3": "Phi3ForCausalLM",
                  "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
                  "qwen3_moe": "Qwen3MoeForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
                  "deepseek_v3": "DeepseekV3ForCausalLM", "pangu_pro_moe": "PanguProMoEForCausalLM",
                  "gpt2": "GPT2LMHeadModel", "bert": "BertModel", "gpt_neox": "GPTNeoXForCausalLM"}
    model_type = {"gemma3": "gemma3_text", "pangu_pro_moe": "PanguProMoE"}.get(family, family)
    cfg: dict[str, Any] = {"architectures": [arch_names[family]], "model_type": model_type}
    cfg.update(common)
    hd = hidden // heads
    if family == "gpt2":
        cfg.update(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=32, n_ctx=32,
                   n_inner=intermediate, layer_norm_epsilon=1e-5, activation_function="gelu_new")
    elif family == "bert":
        cfg.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                   intermediate_size=ff, max_position_embeddings=64, type_vocab_size=2,
                   layer_norm_eps=1e-12, hidden_act="gelu")
    elif family == "gpt_neox":
        cfg.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                   intermediate_size=ff, rotary_pct=0.25, use_parallel_residual=True,
                   layer_norm_eps=1e-5, tie_word_embeddings=False, max_position_embeddings=64)
    else:
        cfg.update(llama_like)
        if family in GEMMA_FAMILIES:
            cfg.update(head_dim=hd, tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh")
            if family != "gemma":
                cfg.update(query_pre_attn_scalar=hd, sliding_window=64)
        if family in ("qwen3", "qwen3_moe"):
            cfg["head_dim"] = hd
        if family == "mixtral":
            cfg.update(num_local_experts=E, num_experts_per_tok=2)
        if family in ("qwen2_moe", "qwen3_moe"):
            cfg.update(num_experts=E, num_experts_per_tok=2, moe_intermediate_size=ff // 2,
                       decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=False)
            if family == "qwen2_moe":
                cfg["shared_expert_intermediate_size"] = ff
        if family.startswith("deepseek"):
            cfg.update(num_key_value_heads=heads, n_routed_experts=E, n_shared_experts=1,
                       num_experts_per_tok=2, moe_intermediate_size=ff // 2,
                       first_k_dense_replace=1, moe_layer_freq=1, kv_lora_rank=32,
                       q_lora_rank=None if family == "deepseek_v2" else 32,
                       qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                       topk_method="greedy" if family == "deepseek_v2" else "noaux_tc")
        if family == "pangu_pro_moe":
            cfg.update(num_experts=E, num_experts_per_tok=2, moe_intermediate_size=ff // 2,
                       shared_expert_intermediate_size=ff)
    cfg.update(overrides)
    return cfg


def make_model(tmp_path: Path, family: str, *, dtype: str = "F32", layers: int = 2,
               hidden: int = 64, heads: int = 4, kv_heads: int = 2, vocab: int = 128,
               intermediate: int | None = None, seed: int = 0, sharded: bool | int = False,
               experts: int | None = None, prefix: str | None = None,
               **overrides: Any) -> SynthModel:
    """Write a tiny HF checkpoint of ``family`` under ``tmp_path/<family>-<dtype>-<seed>``.

    ``sharded=True`` (or an int >= 2) writes that many shards plus
    ``model.safetensors.index.json``. ``prefix`` overrides the GPT-2 (``"transformer."``) or
    BERT (``""``, the all-MiniLM layout) name prefix. ``overrides`` replace config fields
    (e.g. ``tie_word_embeddings=True``, ``q_lora_rank=32``, ``first_k_dense_replace=0``).
    """
    cfg = make_config(family, layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                      vocab=vocab, intermediate=intermediate, experts=experts, dtype=dtype,
                      overrides=overrides)
    b = _Builder(dtype, seed, family)
    if family == "gpt2":
        _gpt2(b, cfg, "transformer." if prefix is None else prefix)
    elif family == "bert":
        _bert(b, cfg, "" if prefix is None else prefix)
    elif family == "gpt_neox":
        _neox(b, cfg)
    else:
        _decoder(b, family, cfg)
    path = tmp_path / f"{family}-{dtype}-{seed}{'-sharded' if sharded else ''}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
    write_tokenizer(path, vocab)
    if family == "bert":
        (path / "vocab.txt").write_text("\n".join(_tokens(vocab)) + "\n")
    files = write_safetensors(path, b.stored, shards=2 if sharded is True else int(sharded))
    tensors = {n: t.to(torch.float64).numpy() for n, t in b.stored.items() if t.is_floating_point()}
    return SynthModel(path=path, config=cfg, roles=b.roles, tensors=tensors, family=family,
                      dtype=dtype, files=files)


def write_safetensors(path: Path, stored: dict[str, torch.Tensor], shards: int = 0) -> list[Path]:
    """One ``model.safetensors``, or ``shards`` files plus the index HF writes."""
    names = list(stored)
    if shards < 2:
        save_file(stored, str(path / "model.safetensors"), metadata={"format": "pt"})
        return [path / "model.safetensors"]
    groups = [names[len(names) * s // shards: len(names) * (s + 1) // shards]
              for s in range(shards)]
    weight_map: dict[str, str] = {}
    files = []
    for s, group in enumerate(groups):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file({n: stored[n] for n in group}, str(path / fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in group})
        files.append(path / fname)
    total = sum(t.numel() * t.element_size() for t in stored.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return files


def make_gguf(tmp_path: Path, arch: str = "llama", qtype: str = "F32", **kwargs: Any) -> SynthModel:
    """See :func:`synth_gguf.make_gguf` (kept separate to keep modules small)."""
    from .synth_gguf import make_gguf as _make_gguf

    return _make_gguf(tmp_path, arch, qtype, **kwargs)
