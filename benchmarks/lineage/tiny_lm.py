"""A minimal llama / qwen2 / mixtral / qwen2_moe decoder in plain torch, saved with HF names.

Why not ``transformers``: the zoo needs a few hundred CPU training steps per model and exact
control over every tensor (permutations, splices, expert copies). The module tree mirrors the
Hugging Face classes, so ``state_dict()`` keys *are* the HF tensor names and a saved directory
(``config.json`` + ``model.safetensors``) is what modelprint reads for a real checkpoint.
Conventions follow HF: RMSNorm ``x * rsqrt(mean(x^2) + eps) * w``, rotate-half RoPE on the
HF (un-permuted) q/k layout, GQA with each kv head serving consecutive query heads, SwiGLU.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2_moe": "Qwen2MoeForCausalLM",
}


@dataclass(frozen=True)
class LMConfig:
    """Shape of one decoder. ``family`` is the HF ``model_type``."""

    family: str = "llama"
    vocab: int = 1024
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    ffn: int = 384
    qkv_bias: bool = False
    tie: bool = False
    rope_theta: float = 10000.0
    eps: float = 1e-6
    max_pos: int = 2048
    experts: int = 0          # > 0 for mixtral / qwen2_moe
    top_k: int = 2
    shared_ffn: int = 0       # qwen2_moe shared expert width
    dtype: str = "float32"    # stored dtype: float32 | bfloat16
    bos: int = 0
    eos: int = 0

    def with_(self, **kw: Any) -> LMConfig:
        return replace(self, **kw)

    def to_hf(self) -> dict[str, Any]:
        """The config.json a Hugging Face checkpoint of this family carries."""
        c: dict[str, Any] = {
            "architectures": [ARCHITECTURES[self.family]],
            "model_type": self.family,
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_pos,
            "rms_norm_eps": self.eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie,
            "initializer_range": 0.02,
            "bos_token_id": self.bos,
            "eos_token_id": self.eos,
            "torch_dtype": self.dtype,
            "use_cache": True,
        }
        if self.family == "llama":
            c.update(intermediate_size=self.ffn, attention_bias=self.qkv_bias, mlp_bias=False)
        elif self.family == "qwen2":
            c.update(intermediate_size=self.ffn, use_sliding_window=False,
                     sliding_window=self.max_pos, max_window_layers=self.layers)
        elif self.family == "mixtral":
            c.update(intermediate_size=self.ffn, num_local_experts=self.experts,
                     num_experts_per_tok=self.top_k, router_aux_loss_coef=0.02,
                     sliding_window=None)
        elif self.family == "qwen2_moe":
            c.update(intermediate_size=self.ffn, moe_intermediate_size=self.ffn,
                     shared_expert_intermediate_size=self.shared_ffn,
                     num_experts=self.experts, num_experts_per_tok=self.top_k,
                     norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                     use_sliding_window=False, sliding_window=self.max_pos,
                     max_window_layers=self.layers, router_aux_loss_coef=0.001)
        else:
            raise ValueError(f"unknown family {self.family!r}")
        return c

    @classmethod
    def from_hf(cls, c: dict[str, Any]) -> LMConfig:
        fam = c["model_type"]
        heads = c["num_attention_heads"]
        return cls(
            family=fam, vocab=c["vocab_size"], hidden=c["hidden_size"],
            layers=c["num_hidden_layers"], heads=heads,
            kv_heads=c.get("num_key_value_heads", heads),
            head_dim=c.get("head_dim") or c["hidden_size"] // heads,
            ffn=c.get("moe_intermediate_size") or c["intermediate_size"],
            qkv_bias=fam in ("qwen2", "qwen2_moe") or bool(c.get("attention_bias")),
            tie=bool(c.get("tie_word_embeddings", False)),
            rope_theta=float(c.get("rope_theta", 10000.0)),
            eps=float(c.get("rms_norm_eps", 1e-6)),
            max_pos=int(c.get("max_position_embeddings", 2048)),
            experts=int(c.get("num_local_experts") or c.get("num_experts") or 0),
            top_k=int(c.get("num_experts_per_tok", 2)),
            shared_ffn=int(c.get("shared_expert_intermediate_size", 0)),
            dtype=str(c.get("torch_dtype", "float32")),
            bos=int(c.get("bos_token_id") or 0), eos=int(c.get("eos_token_id") or 0),
        )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MLP(nn.Module):
    """SwiGLU with HF llama names."""

    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, ffn, bias=False)
        self.up_proj = nn.Linear(hidden, ffn, bias=False)
        self.down_proj = nn.Linear(ffn, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MixtralExpert(nn.Module):
    """SwiGLU with Mixtral names: w1 = gate, w3 = up, w2 = down."""

    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden, ffn, bias=False)
        self.w2 = nn.Linear(ffn, hidden, bias=False)
        self.w3 = nn.Linear(hidden, ffn, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoE(nn.Module):
    """Top-k routed experts; mixtral and qwen2_moe (with its sigmoid-gated shared expert)."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.top_k = cfg.top_k
        self.gate = nn.Linear(cfg.hidden, cfg.experts, bias=False)
        self.experts: nn.ModuleList
        if cfg.family == "mixtral":
            self.experts = nn.ModuleList(
                MixtralExpert(cfg.hidden, cfg.ffn) for _ in range(cfg.experts))
        else:
            self.experts = nn.ModuleList(MLP(cfg.hidden, cfg.ffn) for _ in range(cfg.experts))
            self.shared_expert = MLP(cfg.hidden, cfg.shared_ffn)
            self.shared_expert_gate = nn.Linear(cfg.hidden, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        h = x.reshape(-1, shape[-1])
        probs = F.softmax(self.gate(h), dim=-1, dtype=torch.float32)
        w, idx = torch.topk(probs, self.top_k, dim=-1)
        w = (w / w.sum(-1, keepdim=True)).to(h.dtype)   # mixtral; qwen2_moe norm_topk_prob
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.nonzero(idx == e, as_tuple=True)
            if rows.numel():
                out.index_add_(0, rows, expert(h[rows]) * w[rows, slot, None])
        if hasattr(self, "shared_expert"):
            out = out + torch.sigmoid(self.shared_expert_gate(h)) * self.shared_expert(h)
        return out.reshape(shape)


def rope_tables(cfg: LMConfig, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64)
                                    / cfg.head_dim))
    ang = torch.outer(torch.arange(seq, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        qd, kd = cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden, qd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden, kd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden, kd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(qd, cfg.hidden, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        rep = c.heads // c.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, c.heads * c.head_dim))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        ff: nn.Module
        self.mlp: Any
        self.block_sparse_moe: Any
        if cfg.family == "mixtral":
            self.block_sparse_moe = SparseMoE(cfg)
        elif cfg.family == "qwen2_moe":
            self.mlp = SparseMoE(cfg)
        else:
            self.mlp = MLP(cfg.hidden, cfg.ffn)
        ff = self.block_sparse_moe if cfg.family == "mixtral" else self.mlp
        self._ff = [ff]  # list: not registered twice

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self._ff[0](self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        # Any: each layer's attributes differ by family (mlp vs block_sparse_moe)
        self.layers: Any = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.eps)


class CausalLM(nn.Module):
    """``model.*`` + ``lm_head``: the HF ``*ForCausalLM`` layout."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = Body(cfg)
        if not cfg.tie:
            self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)

    def init_weights(self, seed: int, std: float = 0.02) -> None:
        """HF-style init (normal(0, 0.02), zero biases, unit norms) from one seed."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                    p.fill_(1.0)
                elif name.endswith(".bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def head_weight(self) -> torch.Tensor:
        return self.model.embed_tokens.weight if self.cfg.tie else self.lm_head.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cos, sin = rope_tables(self.cfg, ids.shape[1])
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return F.linear(self.model.norm(x), self.head_weight())

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        logits = self(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    def hf_state(self) -> dict[str, torch.Tensor]:
        """The tensors to store: HF names, tied lm_head omitted, in the stored dtype."""
        dt = torch.bfloat16 if self.cfg.dtype == "bfloat16" else torch.float32
        return {k: v.detach().to(dt).contiguous().clone() for k, v in self.state_dict().items()}


def save_model(model: CausalLM, out: Path, metadata: dict[str, str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.cfg.to_hf(), indent=2) + "\n")
    save_file(model.hf_state(), str(out / "model.safetensors"),
              metadata={"format": "pt", **(metadata or {})})


def load_model(path: Path) -> CausalLM:
    """Load a directory written by :func:`save_model` (or any HF dir with these names)."""
    cfg = LMConfig.from_hf(json.loads((path / "config.json").read_text()))
    model = CausalLM(cfg)
    state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model


def config_dict(cfg: LMConfig) -> dict[str, Any]:
    return asdict(cfg)
