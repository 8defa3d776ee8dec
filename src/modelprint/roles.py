"""The canonical roles of CONTRACT.md, in one place so every layer spells them alike."""

from __future__ import annotations

ATTN_Q, ATTN_K, ATTN_V, ATTN_O = "attn.q", "attn.k", "attn.v", "attn.o"
ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS, ATTN_O_BIAS = (
    "attn.q_bias", "attn.k_bias", "attn.v_bias", "attn.o_bias",
)
NORM_ATTN, NORM_MLP, NORM_Q, NORM_K = "norm.attn", "norm.mlp", "norm.q", "norm.k"
MLP_GATE, MLP_UP, MLP_DOWN = "mlp.gate", "mlp.up", "mlp.down"
MOE_ROUTER = "moe.router"
MOE_EXPERT_GATE, MOE_EXPERT_UP, MOE_EXPERT_DOWN = (
    "moe.expert.gate", "moe.expert.up", "moe.expert.down",
)
EMBED, LM_HEAD = "embed", "lm_head"

#: Roles every family maps onto. Families may add their own extra roles (e.g. DeepSeek MLA
#: projections ``attn.q_a``, ``attn.kv_a`` ..., extra Gemma norms ``norm.attn_post``); those
#: are fingerprinted and shown but only the canonical ones below are compared by the seed checks.
CANONICAL_ROLES: tuple[str, ...] = (
    ATTN_Q, ATTN_K, ATTN_V, ATTN_O,
    ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS, ATTN_O_BIAS,
    NORM_ATTN, NORM_MLP, NORM_Q, NORM_K,
    MLP_GATE, MLP_UP, MLP_DOWN,
    MOE_ROUTER, MOE_EXPERT_GATE, MOE_EXPERT_UP, MOE_EXPERT_DOWN,
    EMBED, LM_HEAD,
)

ATTENTION_PROJECTIONS: tuple[str, ...] = (ATTN_Q, ATTN_K, ATTN_V, ATTN_O)
QKV_BIASES: tuple[str, ...] = (ATTN_Q_BIAS, ATTN_K_BIAS, ATTN_V_BIAS)
NORMS: tuple[str, ...] = (NORM_ATTN, NORM_MLP)


def is_vector_role(role: str) -> bool:
    """Bias and norm roles are 1-D and small: fingerprints keep their raw values."""
    return role.endswith("_bias") or role.startswith("norm.") or role.endswith(".bias")
