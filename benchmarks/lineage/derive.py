"""Weight surgery for the derivatives: what people do to a checkpoint before training it.

Each function returns a new :class:`CausalLM`; training (where the derivation includes it) is
done by the caller. Permutations preserve the function exactly (the builder verifies logits);
the others change it and are followed by real training steps.
"""

from __future__ import annotations

import numpy as np
import torch

from .bpe import Encoder
from .tiny_lm import CausalLM, LMConfig


def _copy_globals(dst: CausalLM, src: CausalLM) -> None:
    with torch.no_grad():
        dst.model.embed_tokens.weight.copy_(src.model.embed_tokens.weight)
        dst.model.norm.weight.copy_(src.model.norm.weight)
        if not dst.cfg.tie:
            dst.lm_head.weight.copy_(src.head_weight())


def layer_drop(m: CausalLM, drop: list[int]) -> CausalLM:
    """Remove whole decoder layers (ShortGPT-style depth pruning)."""
    keep = [i for i in range(m.cfg.layers) if i not in set(drop)]
    out = CausalLM(m.cfg.with_(layers=len(keep)))
    _copy_globals(out, m)
    for j, i in enumerate(keep):
        out.model.layers[j].load_state_dict(m.model.layers[i].state_dict())
    return out


def depth_upscale(m: CausalLM, k: int) -> CausalLM:
    """SOLAR DUS: two copies of an n-layer stack, drop the last k of the first and the first k
    of the second, splice -> 2(n - k) layers (to be trained afterwards)."""
    n = m.cfg.layers
    order = list(range(n - k)) + list(range(k, n))
    out = CausalLM(m.cfg.with_(layers=len(order)))
    _copy_globals(out, m)
    for j, i in enumerate(order):
        out.model.layers[j].load_state_dict(m.model.layers[i].state_dict())
    return out


@torch.no_grad()
def _importance(m: CausalLM, calib: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Minitron-style activation importance: residual channels (mean |input to each norm|,
    summed over layers) and FFN neurons (mean |silu(gate) * up| per layer)."""
    hid = torch.zeros(m.cfg.hidden)
    ffn: list[torch.Tensor] = []
    hooks = []

    def on_norm(_mod: torch.nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        hid.add_(inp[0].abs().mean(dim=(0, 1)))

    def on_down(_mod: torch.nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        ffn.append(inp[0].abs().mean(dim=(0, 1)))

    for layer in m.model.layers:
        hooks.append(layer.input_layernorm.register_forward_pre_hook(on_norm))
        hooks.append(layer.mlp.down_proj.register_forward_pre_hook(on_down))
    m(calib)
    for h in hooks:
        h.remove()
    return hid, ffn


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(torch.topk(scores, k).indices).values   # keep the original order


def width_prune(m: CausalLM, hidden: int, ffn: int, calib: torch.Tensor) -> CausalLM:
    """Minitron-W: drop the least active residual channels and FFN neurons (to be healed)."""
    hid_imp, ffn_imp = _importance(m, calib)
    kh = _top(hid_imp, hidden)
    out = CausalLM(m.cfg.with_(hidden=hidden, ffn=ffn))
    with torch.no_grad():
        out.model.embed_tokens.weight.copy_(m.model.embed_tokens.weight[:, kh])
        out.model.norm.weight.copy_(m.model.norm.weight[kh])
        if not out.cfg.tie:
            out.lm_head.weight.copy_(m.head_weight()[:, kh])
        for layer, src, imp in zip(out.model.layers, m.model.layers, ffn_imp, strict=True):
            kf = _top(imp, ffn)
            a, sa = layer.self_attn, src.self_attn
            for p in ("q_proj", "k_proj", "v_proj"):
                getattr(a, p).weight.copy_(getattr(sa, p).weight[:, kh])
                if out.cfg.qkv_bias:
                    getattr(a, p).bias.copy_(getattr(sa, p).bias)
            a.o_proj.weight.copy_(sa.o_proj.weight[kh])
            layer.input_layernorm.weight.copy_(src.input_layernorm.weight[kh])
            layer.post_attention_layernorm.weight.copy_(src.post_attention_layernorm.weight[kh])
            layer.mlp.gate_proj.weight.copy_(src.mlp.gate_proj.weight[kf][:, kh])
            layer.mlp.up_proj.weight.copy_(src.mlp.up_proj.weight[kf][:, kh])
            layer.mlp.down_proj.weight.copy_(src.mlp.down_proj.weight[kh][:, kf])
    return out


def moe_upcycle(m: CausalLM, experts: int, top_k: int, seed: int) -> CausalLM:
    """Sparse upcycling: every expert starts as a copy of the dense FFN, the router is new.
    llama -> mixtral names; qwen2 -> qwen2_moe (whose shared expert is a copy too)."""
    fam = "mixtral" if m.cfg.family == "llama" else "qwen2_moe"
    cfg = m.cfg.with_(family=fam, experts=experts, top_k=top_k,
                      shared_ffn=m.cfg.ffn if fam == "qwen2_moe" else 0)
    out = CausalLM(cfg)
    g = torch.Generator().manual_seed(seed)
    _copy_globals(out, m)
    with torch.no_grad():
        for layer, src in zip(out.model.layers, m.model.layers, strict=True):
            layer.self_attn.load_state_dict(src.self_attn.state_dict())
            layer.input_layernorm.load_state_dict(src.input_layernorm.state_dict())
            layer.post_attention_layernorm.load_state_dict(
                src.post_attention_layernorm.state_dict())
            moe = layer.block_sparse_moe if fam == "mixtral" else layer.mlp
            moe.gate.weight.copy_(torch.randn(moe.gate.weight.shape, generator=g) * 0.02)
            d = src.mlp
            for e in moe.experts:
                if fam == "mixtral":
                    e.w1.weight.copy_(d.gate_proj.weight)
                    e.w3.weight.copy_(d.up_proj.weight)
                    e.w2.weight.copy_(d.down_proj.weight)
                else:
                    e.load_state_dict(d.state_dict())
            if fam == "qwen2_moe":
                moe.shared_expert.load_state_dict(d.state_dict())
                moe.shared_expert_gate.weight.zero_()
    return out


def permute(m: CausalLM, seed: int, residual: bool) -> tuple[CausalLM, dict[str, list[int]]]:
    """Function-preserving relabelling: FFN neurons and attention heads per layer (kv groups
    and query heads within a group move together), optionally the residual stream too."""
    c = m.cfg
    rng = np.random.default_rng(seed)
    out = CausalLM(c)
    out.load_state_dict(m.state_dict())
    rep = c.heads // c.kv_heads
    hd = c.head_dim
    ph = torch.from_numpy(rng.permutation(c.hidden)) if residual else torch.arange(c.hidden)
    record: dict[str, list[int]] = {"residual": ph.tolist()}
    with torch.no_grad():
        out.model.embed_tokens.weight.copy_(m.model.embed_tokens.weight[:, ph])
        out.model.norm.weight.copy_(m.model.norm.weight[ph])
        if not c.tie:
            out.lm_head.weight.copy_(m.lm_head.weight[:, ph])
        for i, (layer, src) in enumerate(zip(out.model.layers, m.model.layers, strict=True)):
            pf = torch.from_numpy(rng.permutation(c.ffn))
            groups = rng.permutation(c.kv_heads)
            qheads = np.concatenate([g * rep + rng.permutation(rep) for g in groups])
            qrows = torch.from_numpy((qheads[:, None] * hd + np.arange(hd)).ravel())
            krows = torch.from_numpy((groups[:, None] * hd + np.arange(hd)).ravel())
            record[f"layer{i}.ffn"] = pf.tolist()
            record[f"layer{i}.heads"] = qheads.tolist()
            a, sa = layer.self_attn, src.self_attn
            a.q_proj.weight.copy_(sa.q_proj.weight[qrows][:, ph])
            a.k_proj.weight.copy_(sa.k_proj.weight[krows][:, ph])
            a.v_proj.weight.copy_(sa.v_proj.weight[krows][:, ph])
            if c.qkv_bias:
                a.q_proj.bias.copy_(sa.q_proj.bias[qrows])
                a.k_proj.bias.copy_(sa.k_proj.bias[krows])
                a.v_proj.bias.copy_(sa.v_proj.bias[krows])
            a.o_proj.weight.copy_(sa.o_proj.weight[ph][:, qrows])
            layer.input_layernorm.weight.copy_(src.input_layernorm.weight[ph])
            layer.post_attention_layernorm.weight.copy_(src.post_attention_layernorm.weight[ph])
            layer.mlp.gate_proj.weight.copy_(src.mlp.gate_proj.weight[pf][:, ph])
            layer.mlp.up_proj.weight.copy_(src.mlp.up_proj.weight[pf][:, ph])
            layer.mlp.down_proj.weight.copy_(src.mlp.down_proj.weight[ph][:, pf])
    return out, record


def linear_merge(a: CausalLM, b: CausalLM, w: float) -> CausalLM:
    """``w * a + (1 - w) * b`` tensor by tensor (mergekit's ``linear``)."""
    out = CausalLM(a.cfg)
    sb = b.state_dict()
    out.load_state_dict({k: w * v + (1 - w) * sb[k] for k, v in a.state_dict().items()})
    return out


def extend_vocab(m: CausalLM, old: Encoder, new: Encoder) -> CausalLM:
    """Append rows for the new tokens, initialised to the mean of the old embeddings of the
    pieces the old tokenizer splits them into (the usual practice); old ids are unchanged."""
    cfg: LMConfig = m.cfg.with_(vocab=len(new))
    out = CausalLM(cfg)
    out.load_state_dict({k: v for k, v in m.state_dict().items()
                         if k not in ("model.embed_tokens.weight", "lm_head.weight")},
                        strict=False)
    inv = {i: t for t, i in new.vocab.items()}
    with torch.no_grad():
        tables = [(out.model.embed_tokens.weight, m.model.embed_tokens.weight)]
        if not cfg.tie:
            tables.append((out.lm_head.weight, m.lm_head.weight))
        for dst, src in tables:
            dst[: m.cfg.vocab].copy_(src)
            for i in range(m.cfg.vocab, cfg.vocab):
                pieces = [old.vocab[s] for s in old.apply(list(inv[i]))]
                dst[i].copy_(src[pieces].mean(0))
    return out

