"""Tiny synthetic GGUF files written with ``gguf.GGUFWriter``, with their HF-layout truth.

Names, metadata keys and layouts follow llama.cpp's converter: ``blk.N.attn_q.weight``...,
``{arch}.block_count`` / ``embedding_length`` / ``attention.head_count`` ..., q/k rows of
llama-style archs permuted as ``LlamaModel.permute`` does (rows regrouped per head as
``(heads, 2, head_dim/2)`` -> ``(heads, head_dim/2, 2)``), Gemma norm weights stored as
``1 + w`` (the converter adds 1 to every ``*norm.weight``), experts stacked 3-D
``(E, ff, d)``, fused ``attn_qkv`` as Q then K then V rows.

``roles`` holds what a reader must return in the HF layout: the *dequantised* stored values
with the q/k permutation undone. Quantisation uses ``gguf.quants.quantize`` where gguf-py has a
quantiser; for K-quants (no quantiser in gguf-py) random valid blocks are written, with small
finite f16 scales, and the truth is their dequantisation. Tensors whose row length is not a
multiple of the block size fall back to F32, as llama.cpp does; 1-D tensors are always F32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

from .synth import SynthModel, _tokens, role_std

GGUF_ARCHS = ("llama", "qwen2", "qwen3", "qwen2moe", "qwen3moe", "gemma", "gemma2", "gemma3",
              "phi3", "gpt2", "gptneox", "bert", "deepseek2")
CLASSIC_ARCHS = ("gpt2", "gptneox", "bert")   # no GQA, biases and LayerNorm biases
PERMUTED_ARCHS = ("llama",)  # llama.cpp permutes q/k only for LlamaModel (and its subclasses)

# Byte offsets of the f16 scale fields inside one K-quant block: (start, count).
_K_F16_FIELDS = {"Q2_K": (-4, 2), "Q3_K": (-2, 1), "Q4_K": (0, 2), "Q5_K": (0, 2),
                 "Q6_K": (-2, 1)}


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k permutation (HF -> GGUF)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of :func:`permute_rows` (GGUF -> HF)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def _random_kquant(rng: np.random.Generator, shape: tuple[int, ...], qname: str) -> np.ndarray:
    qt = gguf.GGMLQuantizationType[qname]
    block, size = gguf.GGML_QUANT_SIZES[qt]
    *lead, n = shape
    nb = n // block
    raw = rng.integers(0, 256, size=(*lead, nb, size), dtype=np.uint8)
    start, count = _K_F16_FIELDS[qname]
    scales = (rng.uniform(2e-5, 2e-4, size=(*lead, nb, count))).astype(np.float16)
    raw[..., start: start + 2 * count if start + 2 * count != 0 else None] = scales.view(np.uint8)
    return raw.reshape(*lead, nb * size)


def _encode(rng: np.random.Generator, w: np.ndarray, qname: str) -> tuple[np.ndarray, str]:
    """Stored form of ``w`` and its stored type name."""
    if w.ndim == 1 or qname == "F32":
        return w.astype(np.float32), "F32"
    if qname == "F16":
        return w.astype(np.float16), "F16"
    qt = gguf.GGMLQuantizationType[qname]
    block = gguf.GGML_QUANT_SIZES[qt][0]
    if w.shape[-1] % block:
        return w.astype(np.float32), "F32"
    if qname in _K_F16_FIELDS:
        return _random_kquant(rng, w.shape, qname), qname
    return gguf.quants.quantize(w.astype(np.float32), qt), qname


def _decode(stored: np.ndarray, qname: str) -> np.ndarray:
    if qname in ("F32", "F16"):
        return stored.astype(np.float64)
    qt = gguf.GGMLQuantizationType[qname]
    return gguf.quants.dequantize(stored, qt).astype(np.float64)


def make_gguf(tmp_path: Path, arch: str = "llama", qtype: str = "F32", *, layers: int = 2,
              hidden: int = 64, heads: int = 4, kv_heads: int = 2, vocab: int = 128,
              intermediate: int | None = None, seed: int = 0, experts: int | None = None,
              tied: bool | None = None, name: str | None = None) -> SynthModel:
    """Write ``tmp_path/<name>.gguf``; ``experts`` turns llama into a Mixtral-style MoE."""
    if arch not in GGUF_ARCHS:
        raise ValueError(f"unknown synthetic GGUF arch {arch!r}; known: {', '.join(GGUF_ARCHS)}")
    rng = np.random.default_rng(seed)
    n_layers = layers
    d, h, kv, ff = hidden, heads, kv_heads, intermediate or 2 * hidden
    if arch in CLASSIC_ARCHS or arch == "deepseek2":
        kv = h
    hd = d // h
    gemma = arch.startswith("gemma")
    moe = arch in ("qwen2moe", "qwen3moe", "deepseek2") or experts is not None
    E = experts or (4 if moe else 0)
    tied = (gemma or arch in ("gpt2", "bert")) if tied is None else tied
    path = tmp_path / f"{name or f'{arch}-{qtype}-{seed}'}.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"synthetic {arch}")
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(d)
    w.add_feed_forward_length(ff)
    w.add_head_count(h)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(hd)
    if gemma or arch.startswith("qwen3"):
        w.add_key_length(hd)
        w.add_value_length(hd)
    if moe:
        w.add_expert_count(E)
        w.add_expert_used_count(2)
        w.add_expert_feed_forward_length(ff // 2 if arch != "llama" else ff)
    toks = _tokens(vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * vocab)
    w.add_token_types([3 if i < 3 else 1 for i in range(vocab)])

    roles: dict[tuple[str, int | None, int | None], np.ndarray] = {}
    tensors: dict[str, np.ndarray] = {}

    def values(shape: tuple[int, ...], role: str, layer: int | None) -> np.ndarray:
        if role.startswith("norm."):
            base = rng.standard_normal(shape) * 0.1
            return (base + (0.0 if gemma else 1.0)).astype(np.float32)
        return (rng.standard_normal(shape) * role_std(role, layer)).astype(np.float32)

    def put(tname: str, hf: np.ndarray, parts: list[tuple[str, int | None, int]] | None = None,
            layer: int | None = None, permute_heads: int | None = None,
            norm_shift: bool = False) -> None:
        """Store ``hf`` (HF layout) under ``tname``; ``parts`` = [(role, expert, rows)]."""
        gg = permute_rows(hf, permute_heads) if permute_heads else hf
        if norm_shift:
            gg = gg + np.float32(1.0)
        stored, qn = _encode(rng, gg, qtype)
        raw_dtype = None if qn in ("F32", "F16") else gguf.GGMLQuantizationType[qn]
        w.add_tensor(tname, stored, raw_dtype=raw_dtype)
        deq = _decode(stored, qn).reshape(gg.shape)
        tensors[tname] = deq
        truth = unpermute_rows(deq, permute_heads) if permute_heads else deq
        start = 0
        for role, expert, rows in parts or []:
            if expert is None:
                roles[(role, layer, None)] = truth[start:start + rows]
                start += rows
            else:
                roles[(role, layer, expert)] = truth[expert]

    def single(tname: str, shape: tuple[int, ...], role: str, layer: int | None,
               permute_heads: int | None = None) -> None:
        put(tname, values(shape, role, layer), [(role, None, shape[0])], layer, permute_heads,
            norm_shift=gemma and role.startswith("norm."))

    def exps(tname: str, shape: tuple[int, int], role: str, layer: int) -> None:
        stack = np.stack([values(shape, role, layer) for _ in range(E)])
        put(tname, stack, [(role, e, 0) for e in range(E)], layer)

    def with_bias(tname: str, shape: tuple[int, ...], role: str, layer: int | None) -> None:
        single(tname + ".weight", shape, role, layer)
        single(tname + ".bias", shape[:1], role + "_bias", layer)

    def fused_qkv(p: str, i: int) -> None:
        parts = [("attn.q", None, h * hd), ("attn.k", None, kv * hd), ("attn.v", None, kv * hd)]
        put(p + "attn_qkv.weight", np.concatenate([values((r, d), ro, i) for ro, _, r in parts]),
            parts, i)
        if arch in CLASSIC_ARCHS:
            bparts = [(ro + "_bias", None, r) for ro, _, r in parts]
            put(p + "attn_qkv.bias", np.concatenate([values((r,), ro, i) for ro, _, r in bparts]),
                bparts, i)

    single("token_embd.weight", (vocab, d), "embed", None)
    if arch in CLASSIC_ARCHS:
        _classic(arch, layers, d, ff, single, with_bias, fused_qkv)
        layers = 0
    perm = arch in PERMUTED_ARCHS
    for i in range(layers):
        p = f"blk.{i}."
        single(p + "attn_norm.weight", (d,), "norm.attn", i)
        if arch == "phi3":
            fused_qkv(p, i)
        elif arch == "deepseek2":
            _mla(p, i, h, d, single)
        else:
            single(p + "attn_q.weight", (h * hd, d), "attn.q", i, h if perm else None)
            single(p + "attn_k.weight", (kv * hd, d), "attn.k", i, kv if perm else None)
            single(p + "attn_v.weight", (kv * hd, d), "attn.v", i)
        if arch in ("qwen2", "qwen2moe"):
            for n, r in (("q", h * hd), ("k", kv * hd), ("v", kv * hd)):
                single(f"{p}attn_{n}.bias", (r,), f"attn.{n}_bias", i)
        if arch in ("qwen3", "qwen3moe", "gemma3"):
            single(p + "attn_q_norm.weight", (hd,), "norm.q", i)
            single(p + "attn_k_norm.weight", (hd,), "norm.k", i)
        single(p + "attn_output.weight", (d, h * hd), "attn.o", i)
        if arch in ("gemma2", "gemma3"):
            single(p + "post_attention_norm.weight", (d,), "norm.attn_post", i)
            single(p + "ffn_norm.weight", (d,), "norm.mlp", i)
            single(p + "post_ffw_norm.weight", (d,), "norm.mlp_post", i)
        else:
            single(p + "ffn_norm.weight", (d,), "norm.mlp", i)
        if moe and not (arch == "deepseek2" and i == 0):   # DeepSeek: first layer dense
            eff = ff if arch == "llama" else ff // 2
            single(p + "ffn_gate_inp.weight", (E, d), "moe.router", i)
            exps(p + "ffn_gate_exps.weight", (eff, d), "moe.expert.gate", i)
            exps(p + "ffn_up_exps.weight", (eff, d), "moe.expert.up", i)
            exps(p + "ffn_down_exps.weight", (d, eff), "moe.expert.down", i)
            if arch == "deepseek2":
                single(p + "exp_probs_b.bias", (E,), "moe.router_bias", i)
            if arch in ("qwen2moe", "deepseek2"):
                if arch == "qwen2moe":
                    single(p + "ffn_gate_inp_shexp.weight", (1, d), "moe.shared.router", i)
                single(p + "ffn_gate_shexp.weight", (ff, d), "moe.shared.gate", i)
                single(p + "ffn_up_shexp.weight", (ff, d), "moe.shared.up", i)
                single(p + "ffn_down_shexp.weight", (d, ff), "moe.shared.down", i)
        elif arch == "phi3":
            parts = [("mlp.gate", None, ff), ("mlp.up", None, ff)]
            gu = np.concatenate([values((ff, d), role, i) for role, _, _ in parts])
            put(p + "ffn_up.weight", gu, parts, i)
            single(p + "ffn_down.weight", (d, ff), "mlp.down", i)
        else:
            single(p + "ffn_gate.weight", (ff, d), "mlp.gate", i)
            single(p + "ffn_up.weight", (ff, d), "mlp.up", i)
            single(p + "ffn_down.weight", (d, ff), "mlp.down", i)
    if arch != "bert":
        single("output_norm.weight", (d,), "norm.final", None)
    if arch in ("gpt2", "gptneox"):
        single("output_norm.bias", (d,), "norm.final_bias", None)
    if not tied:
        single("output.weight", (vocab, d), "lm_head", None)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    config = {"model_type": arch, "num_hidden_layers": n_layers, "hidden_size": d,
              "num_attention_heads": h, "num_key_value_heads": kv, "intermediate_size": ff,
              "vocab_size": vocab, "head_dim": hd, "_naming": "gguf"}
    if moe:
        config["num_local_experts"] = E
    return SynthModel(path=path, config=config, roles=roles, tensors=tensors, family=arch,
                      dtype=qtype, files=[path])


def _classic(arch: str, layers: int, d: int, ff: int, single: Any, with_bias: Any,
             fused_qkv: Any) -> None:
    """GPT-2 / GPT-NeoX / BERT blocks as llama.cpp names them (all LayerNorms with bias)."""
    if arch == "gpt2":
        single("position_embd.weight", (32, d), "embed.pos", None)
    if arch == "bert":
        single("token_types.weight", (2, d), "embed.type", None)
        single("position_embd.weight", (64, d), "embed.pos", None)
        with_bias("token_embd_norm", (d,), "norm.embed", None)
    for i in range(layers):
        p = f"blk.{i}."
        if arch == "bert":
            for n in ("q", "k", "v"):
                with_bias(p + f"attn_{n}", (d, d), f"attn.{n}", i)
        else:
            with_bias(p + "attn_norm", (d,), "norm.attn", i)
            fused_qkv(p, i)
        with_bias(p + "attn_output", (d, d), "attn.o", i)
        if arch == "bert":
            with_bias(p + "attn_output_norm", (d,), "norm.attn", i)
        else:
            with_bias(p + "ffn_norm", (d,), "norm.mlp", i)
        with_bias(p + "ffn_up", (ff, d), "mlp.up", i)
        with_bias(p + "ffn_down", (d, ff), "mlp.down", i)
        if arch == "bert":
            with_bias(p + "layer_output_norm", (d,), "norm.mlp", i)


def _mla(p: str, i: int, h: int, d: int, single: Any) -> None:
    """DeepSeek-V2/V3 attention as GGUF ``deepseek2`` stores it (q_lora_rank 32, kv 32)."""
    qr, kvr, nope, rope, vd = 32, 32, 16, 8, 16
    single(p + "attn_q_a.weight", (qr, d), "attn.q_a", i)
    single(p + "attn_q_a_norm.weight", (qr,), "norm.q_a", i)
    single(p + "attn_q_b.weight", (h * (nope + rope), qr), "attn.q_b", i)
    single(p + "attn_kv_a_mqa.weight", (kvr + rope, d), "attn.kv_a", i)
    single(p + "attn_kv_a_norm.weight", (kvr,), "norm.kv_a", i)
    single(p + "attn_kv_b.weight", (h * (nope + vd), kvr), "attn.kv_b", i)
