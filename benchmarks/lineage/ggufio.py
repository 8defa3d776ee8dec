"""GGUF in and out for the zoo: quantised round trips, and SmolLM2's GGUF as a HF directory.

Writing follows llama.cpp's converter: GGUF tensor names (``blk.N.attn_q.weight``), q/k rows
of *llama* permuted for its interleaved RoPE (qwen2 uses NEOX RoPE and is stored as is),
norms in F32, 2-D weights quantised. ``gguf.quants.quantize`` implements Q8_0 but not Q4_K
(gguf 0.19 raises NotImplementedError), so :func:`quantize_q4_k` is a plain encoder of the
Q4_K block format here — simpler than llama.cpp's iterative scale search, checked against
``gguf.quants.dequantize`` for round-trip error. Rows whose length is not a multiple of the
block size fall back to Q8_0 (llama.cpp also substitutes types there); the fallback is
recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

from .bpe import Encoder
from .tiny_lm import LMConfig

QK_K = 256


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp ``LlamaModel.permute``: HF rotate-half layout -> interleaved pairs."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Encode float rows (length % 256 == 0) as Q4_K blocks (144 bytes per 256 values)."""
    rows = x.astype(np.float32).reshape(-1, QK_K)
    n = rows.shape[0]
    sub = rows.reshape(n, 8, 32)
    lo = np.minimum(sub.min(-1), 0.0)                    # x ~ scale * q - mins, q in 0..15
    hi = sub.max(-1)
    scale = (hi - lo) / 15.0
    mins = -lo
    d = (scale.max(-1) / 63.0).astype(np.float16).astype(np.float32)
    dmin = (mins.max(-1) / 63.0).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.rint(scale / d[:, None]), 0).clip(0, 63)
        mn = np.where(dmin[:, None] > 0, np.rint(mins / dmin[:, None]), 0).clip(0, 63)
        eff_s = (d[:, None] * sc)[..., None]
        eff_m = (dmin[:, None] * mn)[..., None]
        q = np.where(eff_s > 0, np.rint((sub + eff_m) / eff_s), 0).clip(0, 15)
    sc, mn, q = sc.astype(np.uint8), mn.astype(np.uint8), q.astype(np.uint8)
    packed = np.zeros((n, 12), dtype=np.uint8)
    packed[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    q4 = q.reshape(n, 4, 2, 32)
    qs = (q4[:, :, 0, :] | (q4[:, :, 1, :] << 4)).reshape(n, 128)
    out = np.concatenate([d.astype(np.float16).view(np.uint8).reshape(n, 2),
                          dmin.astype(np.float16).view(np.uint8).reshape(n, 2),
                          packed, qs], axis=1)
    return out.reshape(*x.shape[:-1], x.shape[-1] // QK_K * 144)


def quantize(w: np.ndarray, qtype: str) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """Quantise one 2-D tensor; returns (bytes array, type actually used)."""
    t = gguf.GGMLQuantizationType[qtype]
    block = gguf.GGML_QUANT_SIZES[t][0]
    if w.shape[-1] % block:
        t = gguf.GGMLQuantizationType.Q8_0
    if t == gguf.GGMLQuantizationType.Q4_K:
        return quantize_q4_k(w), t
    return gguf.quants.quantize(w.astype(np.float32), t), t


_LAYER = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight",
           "model.norm.weight": "output_norm.weight"}


def gguf_name(hf: str) -> str:
    if hf in _GLOBAL:
        return _GLOBAL[hf]
    parts = hf.split(".")            # model.layers.N.<module>.<sub>.weight|bias
    n, mod, kind = parts[2], ".".join(parts[3:-1]), parts[-1]
    return f"blk.{n}.{_LAYER[mod]}.{kind}"


def hf_name(g: str) -> str:
    inv = {v: k for k, v in _GLOBAL.items()}
    if g in inv:
        return inv[g]
    _, n, mod, kind = g.split(".")
    back = {v: k for k, v in _LAYER.items()}
    return f"model.layers.{n}.{back[mod]}.{kind}"


def write_gguf(cfg: LMConfig, state: dict[str, np.ndarray], enc: Encoder, path: Path,
               qtype: str, name: str) -> dict[str, Any]:
    """Write a llama/qwen2 checkpoint as GGUF; returns {tensor: type used} counts."""
    if cfg.family not in ("llama", "qwen2"):
        raise ValueError(f"GGUF writer supports llama/qwen2, not {cfg.family}")
    arch = cfg.family
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(name)
    w.add_block_count(cfg.layers)
    w.add_context_length(cfg.max_pos)
    w.add_embedding_length(cfg.hidden)
    w.add_feed_forward_length(cfg.ffn)
    w.add_head_count(cfg.heads)
    w.add_head_count_kv(cfg.kv_heads)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.eps)
    w.add_vocab_size(cfg.vocab)
    tokens = sorted(enc.vocab, key=enc.vocab.__getitem__)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t == enc.eot_token else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges([f"{a} {b}" for a, b in enc.merges])
    w.add_bos_token_id(enc.eot)
    w.add_eos_token_id(enc.eot)
    used: dict[str, int] = {}
    for hf, arr in state.items():
        a = np.asarray(arr, dtype=np.float32)
        if arch == "llama" and hf.endswith("self_attn.q_proj.weight"):
            a = _permute(a, cfg.heads)
        elif arch == "llama" and hf.endswith("self_attn.k_proj.weight"):
            a = _permute(a, cfg.kv_heads)
        if a.ndim == 2:
            data, t = quantize(a, qtype)
            w.add_tensor(gguf_name(hf), data, raw_shape=data.shape, raw_dtype=t)
        else:
            t = gguf.GGMLQuantizationType.F32
            w.add_tensor(gguf_name(hf), a)
        used[t.name] = used.get(t.name, 0) + 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return used


def _field(r: gguf.GGUFReader, key: str) -> Any:
    f = r.fields.get(key)
    if f is None:
        return None
    return f.contents()


def read_gguf(path: Path) -> tuple[LMConfig, dict[str, np.ndarray], Encoder]:
    """A llama/qwen2 GGUF as (config, HF-named float32 tensors, tokenizer)."""
    r = gguf.GGUFReader(str(path))
    arch = _field(r, "general.architecture")
    if arch not in ("llama", "qwen2"):
        raise ValueError(f"{path}: architecture {arch!r} not supported here")
    heads = int(_field(r, f"{arch}.attention.head_count"))
    kv = int(_field(r, f"{arch}.attention.head_count_kv") or heads)
    hidden = int(_field(r, f"{arch}.embedding_length"))
    tokens: list[str] = list(_field(r, "tokenizer.ggml.tokens"))
    merges = [tuple(m.split(" ", 1)) for m in _field(r, "tokenizer.ggml.merges")]
    eos = int(_field(r, "tokenizer.ggml.eos_token_id"))
    state: dict[str, np.ndarray] = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(s) for s in reversed(t.shape)]) if a.ndim != len(t.shape) else a
        name = hf_name(t.name)
        if arch == "llama" and name.endswith("q_proj.weight"):
            a = _unpermute(a, heads)
        elif arch == "llama" and name.endswith("k_proj.weight"):
            a = _unpermute(a, kv)
        state[name] = np.ascontiguousarray(a)
    head_dim = int(_field(r, f"{arch}.attention.key_length") or hidden // heads)
    cfg = LMConfig(
        family=arch, vocab=len(tokens), hidden=hidden,
        layers=int(_field(r, f"{arch}.block_count")), heads=heads, kv_heads=kv,
        head_dim=head_dim, ffn=int(_field(r, f"{arch}.feed_forward_length")),
        qkv_bias=arch == "qwen2", tie="lm_head.weight" not in state,
        rope_theta=float(_field(r, f"{arch}.rope.freq_base") or 10000.0),
        eps=float(_field(r, f"{arch}.attention.layer_norm_rms_epsilon")),
        max_pos=int(_field(r, f"{arch}.context_length")),
        bos=int(_field(r, "tokenizer.ggml.bos_token_id") or eos), eos=eos)
    enc = Encoder([(a, b) for a, b in merges], {t: i for i, t in enumerate(tokens)},
                  eot=tokens[eos])
    return cfg, state, enc
