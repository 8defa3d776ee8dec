"""Disguises of the real Gemma 3 270M (GGUF) that keep its function, and a forward pass to
verify them.

Gemma 3 normalises the *output* of attention and of the MLP (post-norms) and normalises q and
k per head, so a residual rotation is not function-preserving here (``norm(x Q) * g`` is not
``(norm(x) * g) Q`` for a gain ``g`` that is not constant, and the post-norm outputs cannot be
rotated back into the stream); only transforms that commute with every norm apply:
permutations (residual dimensions -- every gain permuted alike --, MLP units, query heads,
the vocabulary), per-unit up/down scaling, per-head V/O maps, q/k scaling (removed exactly by
q_norm/k_norm, up to their epsilon) and the embedding scaling (absorbed by the post-norm
gains, the final norm and the tied head).

The forward pass follows Hugging Face's ``Gemma3ForCausalLM`` on short sequences: embedding
times sqrt(d), sandwich RMSNorms with effective gains (GGUF stores ``1 + w``), per-head q/k
RMSNorm, rotate-half RoPE (base 10 000 on local layers, 1 000 000 on every 6th), scores scaled
by ``query_pre_attn_scalar^-1/2`` (256), GELU-tanh gated MLP, tied lm_head. The sliding window
(512) does not bind on the 64-token check. It only has to be *a* faithful function of the
weights' structure: a transform that preserves it permutes or rescales exactly the axes the
real model treats alike.

The disguised model is written as a Hugging Face ``gemma3_text`` directory (BF16, gains stored
as ``w = g - 1``, the token strings in ``tokenizer.json``), the reference is the real GGUF.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
import torch.nn.functional as F
from benchmarks.lineage.tiny_lm import LMConfig
from safetensors.torch import save_file

from . import reparam

State = dict[str, np.ndarray]

_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
          "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
          "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
          "attn_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
          "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
          "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def read(path: Path) -> tuple[dict[str, Any], State, list[str]]:
    """The GGUF as (facts, HF-named float32 tensors with effective gains, token strings)."""
    r = gguf.GGUFReader(str(path))

    def f(key: str) -> Any:
        return r.fields[f"gemma3.{key}"].contents()

    cfg = {"hidden": int(f("embedding_length")), "layers": int(f("block_count")),
           "heads": int(f("attention.head_count")), "kv_heads": int(f("attention.head_count_kv")),
           "head_dim": int(f("attention.key_length")), "ffn": int(f("feed_forward_length")),
           "eps": float(f("attention.layer_norm_rms_epsilon")),
           "rope_global": float(f("rope.freq_base")), "rope_local": 10000.0,
           "window": int(f("attention.sliding_window")), "query_scalar": 256.0}
    state: State = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(s) for s in reversed(t.shape)])
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        else:
            _, n, mod, kind = t.name.split(".")
            name = f"model.layers.{n}.{_NAMES[mod]}.{kind}"
        state[name] = np.ascontiguousarray(a)
    tokens = list(r.fields["tokenizer.ggml.tokens"].contents())
    cfg["vocab"] = len(tokens)
    return cfg, state, tokens


def _rms(x: torch.Tensor, g: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def _rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    t, hd = x.shape[-2], x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(t, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], -1).to(x.dtype)
    a, b = x.chunk(2, -1)
    return x * ang.cos() + torch.cat([-b, a], -1) * ang.sin()


@torch.no_grad()
def forward(cfg: dict[str, Any], state: State, ids: torch.Tensor,
            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Logits of a Gemma 3 decoder (see the module docstring for what is modelled)."""
    w = {k: torch.from_numpy(v).to(dtype) for k, v in state.items()}
    d, hd, eps = cfg["hidden"], cfg["head_dim"], cfg["eps"]
    b, t = ids.shape
    x = F.embedding(ids, w["model.embed_tokens.weight"]) * torch.tensor(math.sqrt(d), dtype=dtype)
    rep = cfg["heads"] // cfg["kv_heads"]
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(b, t, -1, hd).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(b, t, -1, hd).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(b, t, -1, hd).transpose(1, 2)
        q = _rms(q, w[p + "self_attn.q_norm.weight"], eps)
        k = _rms(k, w[p + "self_attn.k_norm.weight"], eps)
        theta = cfg["rope_global"] if (i + 1) % 6 == 0 else cfg["rope_local"]
        q, k = _rope(q, theta), _rope(k, theta)
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             scale=cfg["query_scalar"] ** -0.5)
        o = att.transpose(1, 2).reshape(b, t, -1) @ w[p + "self_attn.o_proj.weight"].T
        x = x + _rms(o, w[p + "post_attention_layernorm.weight"], eps)
        h = _rms(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        m = (F.gelu(h @ w[p + "mlp.gate_proj.weight"].T, approximate="tanh")
             * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
        x = x + _rms(m, w[p + "post_feedforward_layernorm.weight"], eps)
    return _rms(x, w["model.norm.weight"], eps) @ w["model.embed_tokens.weight"].T


# -- transforms: (cfg, state, tokens, rng) -> (state, tokens) -------------------------------

Disguise = Callable[[dict[str, Any], State, list[str], np.random.Generator],
                    tuple[State, list[str]]]


def _layer_keys(cfg: dict[str, Any], suffix: str) -> list[str]:
    return [f"model.layers.{i}.{suffix}" for i in range(cfg["layers"])]


def permute_residual(cfg: dict[str, Any], s: State, tok: list[str],
                     rng: np.random.Generator) -> tuple[State, list[str]]:
    """One permutation of the residual dimensions everywhere: embedding columns, every
    d-sized gain, reader columns, writer rows (a rotation is not possible here, a
    permutation is: RMSNorm commutes with it)."""
    p = rng.permutation(cfg["hidden"])
    out = dict(s)
    for k, v in s.items():
        if k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight",
                       "up_proj.weight", "embed_tokens.weight")):
            out[k] = v[:, p]
        elif k.endswith(("o_proj.weight", "down_proj.weight")) or v.shape == (cfg["hidden"],):
            out[k] = v[p]       # writer rows, and every residual-sized gain
    return out, tok


def _shared(name: str) -> Disguise:
    """A per-layer re-parameterisation of ``reparam.py`` (the HF names are llama's), on the
    layer tensors only (the 262k-row embedding is not copied to float64)."""
    def apply(cfg: dict[str, Any], s: State, tok: list[str],
              rng: np.random.Generator) -> tuple[State, list[str]]:
        shape = LMConfig(hidden=cfg["hidden"], layers=cfg["layers"], heads=cfg["heads"],
                         kv_heads=cfg["kv_heads"], head_dim=cfg["head_dim"], ffn=cfg["ffn"])
        st = {k: torch.from_numpy(v).double() for k, v in s.items() if ".layers." in k}
        new = reparam.SHARED[name](st, shape, rng)
        return {**s, **{k: v.float().numpy() for k, v in new.items()}}, tok
    return apply


def scale_embedding(cfg: dict[str, Any], s: State, tok: list[str],
                    rng: np.random.Generator, c: float = 5.0) -> tuple[State, list[str]]:
    """E * c: the stream is c times larger; the post-norm gains * c keep each block's write in
    proportion, the pre-norms remove c, the final gain / c undoes the tied head's c."""
    out = dict(s)
    out["model.embed_tokens.weight"] = s["model.embed_tokens.weight"] * c
    for k in (_layer_keys(cfg, "post_attention_layernorm.weight")
              + _layer_keys(cfg, "post_feedforward_layernorm.weight")):
        out[k] = s[k] * c
    out["model.norm.weight"] = s["model.norm.weight"] / c
    return out, tok


def permute_vocab(cfg: dict[str, Any], s: State, tok: list[str],
                  rng: np.random.Generator) -> tuple[State, list[str]]:
    """Token ids relabelled: embedding rows and the token list with one permutation."""
    p = rng.permutation(cfg["vocab"])
    out = dict(s)
    out["model.embed_tokens.weight"] = s["model.embed_tokens.weight"][p]
    return out, [tok[j] for j in p]


DISGUISES: dict[str, Disguise] = {
    "permute_residual": permute_residual,
    **{name: _shared(name) for name in reparam.SHARED},
    "scale_embedding": scale_embedding, "permute_vocab": permute_vocab,
}


def logit_diff(cfg: dict[str, Any], base: State, cand: State, base_tok: list[str],
               cand_tok: list[str], ids: torch.Tensor) -> dict[str, float]:
    """Max |logit diff| of the candidate on the same text (ids mapped through the token
    strings), relative to the max |logit|."""
    pos = {t: i for i, t in enumerate(cand_tok)}
    order = torch.tensor([pos[t] for t in base_tok])
    a = forward(cfg, base, ids)
    bl = forward(cfg, cand, order[ids])[..., order]
    diff = float((a - bl).abs().max())
    return {"max_abs_logit_diff": diff, "max_abs_logit": float(a.abs().max()),
            "relative": diff / float(a.abs().max())}


def save_hf(cfg: dict[str, Any], s: State, tok: list[str], out: Path) -> Path:
    """A Hugging Face ``gemma3_text`` directory: BF16 weights, gains stored as ``g - 1``."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in s.items():
        a = v - 1.0 if k.endswith(("norm.weight", "layernorm.weight")) else v
        tensors[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).bfloat16()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "vocab_size": cfg["vocab"], "hidden_size": cfg["hidden"],
        "num_hidden_layers": cfg["layers"], "num_attention_heads": cfg["heads"],
        "num_key_value_heads": cfg["kv_heads"], "head_dim": cfg["head_dim"],
        "intermediate_size": cfg["ffn"], "rms_norm_eps": cfg["eps"],
        "rope_theta": cfg["rope_global"], "rope_local_base_freq": cfg["rope_local"],
        "sliding_window": cfg["window"], "query_pre_attn_scalar": cfg["query_scalar"],
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": True,
        "torch_dtype": "bfloat16"}, indent=2) + "\n")
    (out / "tokenizer.json").write_text(json.dumps(
        {"version": "1.0", "added_tokens": [],
         "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(tok)}, "merges": []}},
        ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def load_hf(out: Path) -> State:
    """Read back :func:`save_hf`'s weights as effective-gain float32 tensors."""
    from safetensors.torch import load_file

    return {k: (v.float().numpy() + (1.0 if k.endswith(("norm.weight", "layernorm.weight"))
                                     else 0.0))
            for k, v in load_file(str(out / "model.safetensors")).items()}


def drop_layers(cfg: dict[str, Any], s: State, drop: tuple[int, ...]
                ) -> tuple[dict[str, Any], State]:
    """The model without layers ``drop`` (the rest renumbered)."""
    keep = [i for i in range(cfg["layers"]) if i not in drop]
    out = {k: v for k, v in s.items() if ".layers." not in k}
    for j, i in enumerate(keep):
        pre = f"model.layers.{i}."
        out.update({f"model.layers.{j}." + k[len(pre):]: v for k, v in s.items()
                    if k.startswith(pre)})
    return {**cfg, "layers": len(keep)}, out


# the interface of ``run.RealBase``
diff, save, load = logit_diff, save_hf, load_hf
