"""Tiny decoders for the activation tests: random models, disguised copies, a vocabulary.

Models come from ``benchmarks/lineage/tiny_lm.py`` (plain torch, HF names), an implementation
independent of :mod:`modelprint.activations.forward`. :func:`disguise` builds the copy of
issue 12 that weight-space checks cannot see: norm gains folded into the readers, the
residual stream rotated by a random orthogonal matrix, MLP hidden units permuted and SwiGLU
units rescaled (``up * s``, ``down / s``, with signs) -- the same function, no weight where it
was.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig, save_model

WORDS = ("the", "of", "and", "a", "to", "in", "is", "that", "it", "on", "was", "for", "as",
         "with", "at", "by", "from", "one", "if", "its", "are", "be", "not", "river", "stone")


def vocabulary(size: int) -> list[str]:
    """Single characters (so any probe text can be spelled) and some words with and without
    a leading space, padded to ``size`` with filler strings the probe does not contain."""
    chars = list(string.ascii_letters + string.digits + string.punctuation + " \n")
    words = [w for base in WORDS for w in (base, " " + base)]
    toks = (chars + words)[:size]
    return toks + [f"<unused{i}>" for i in range(size - len(toks))]


def write_tokenizer(path: Path, vocab: list[str]) -> None:
    tok = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": None,
           "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(vocab)},
                     "unk_token": vocab[0]}}
    (path / "tokenizer.json").write_text(json.dumps(tok))


CONFIG = LMConfig(family="llama", vocab=256, hidden=64, layers=3, heads=4, kv_heads=2,
                  head_dim=16, ffn=192)


def random_model(seed: int, cfg: LMConfig = CONFIG, gains: bool = True) -> CausalLM:
    """A randomly initialised model; ``gains``: norm gains away from 1 (so folding them is a
    real change of the weights)."""
    model = CausalLM(cfg)
    model.init_weights(seed)
    if gains:
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
    return model


def save(model: CausalLM, path: Path) -> Path:
    save_model(model, path)
    write_tokenizer(path, vocabulary(model.cfg.vocab))
    return path


def disguise(model: CausalLM, seed: int) -> CausalLM:
    """The same function with folded norms, a rotated residual stream, permuted and rescaled
    MLP units. Needs an untied LM head (the final norm is folded into it)."""
    cfg = model.cfg
    assert not cfg.tie
    g = torch.Generator().manual_seed(seed)
    d = cfg.hidden
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    sd = {k: v.detach().double().clone() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    out["model.embed_tokens.weight"] = sd["model.embed_tokens.weight"] @ q
    for i in range(cfg.layers):
        p = f"model.layers.{i}."
        ga, gm = sd[p + "input_layernorm.weight"], sd[p + "post_attention_layernorm.weight"]
        for r in ("q_proj", "k_proj", "v_proj"):
            out[p + f"self_attn.{r}.weight"] = (sd[p + f"self_attn.{r}.weight"] * ga) @ q
            if p + f"self_attn.{r}.bias" in sd:
                out[p + f"self_attn.{r}.bias"] = sd[p + f"self_attn.{r}.bias"]
        out[p + "self_attn.o_proj.weight"] = q.T @ sd[p + "self_attn.o_proj.weight"]
        perm = torch.randperm(cfg.ffn, generator=g)
        scale = (0.5 + torch.rand(cfg.ffn, generator=g, dtype=torch.float64)) * \
            torch.where(torch.rand(cfg.ffn, generator=g) < 0.5, -1.0, 1.0).double()
        gate = (sd[p + "mlp.gate_proj.weight"] * gm) @ q
        up = (sd[p + "mlp.up_proj.weight"] * gm) @ q * scale[:, None]
        down = q.T @ sd[p + "mlp.down_proj.weight"] / scale[None, :]
        out[p + "mlp.gate_proj.weight"] = gate[perm]
        out[p + "mlp.up_proj.weight"] = up[perm]
        out[p + "mlp.down_proj.weight"] = down[:, perm]
        out[p + "input_layernorm.weight"] = torch.ones(d, dtype=torch.float64)
        out[p + "post_attention_layernorm.weight"] = torch.ones(d, dtype=torch.float64)
    out["model.norm.weight"] = torch.ones(d, dtype=torch.float64)
    out["lm_head.weight"] = (sd["lm_head.weight"] * sd["model.norm.weight"]) @ q
    copy = CausalLM(cfg)
    copy.load_state_dict({k: v.float() for k, v in out.items()})
    return copy
