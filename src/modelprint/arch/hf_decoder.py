"""Hugging Face ``model.layers.N`` decoders: the Llama lineage, Gemma, Phi-3 and the MoEs.

One rule set covers llama, mistral, qwen2, qwen3, gemma/gemma2/gemma3, phi3, mixtral,
qwen2_moe, qwen3_moe, deepseek_v2/v3 and Pangu Pro MoE, because these families share their
naming and differ only in which tensors exist (Qwen2's q/k/v biases, Qwen3's ``q_norm``, the
MoE blocks...). A rule that matches nothing costs nothing. Where the *meaning* of a name
differs between families, the family decides (never the tensor list):

* ``post_attention_layernorm`` is the norm before the MLP (``norm.mlp``) in Llama-style
  layers, but Gemma 2/3 and Pangu's sandwich-norm layers apply it to the attention *output*
  (``norm.attn_post``); their pre-MLP norm is ``pre_feedforward_layernorm`` /
  ``pre_mlp_layernorm`` (``norm.mlp``), and ``post_feedforward_layernorm`` /
  ``post_mlp_layernorm`` are ``norm.mlp_post``.

Extra roles beyond CONTRACT.md's canonical ones, chosen so that each stored tensor keeps its
own identity: ``norm.final``, ``norm.attn_post``, ``norm.mlp_post``; DeepSeek MLA
``attn.q_a``, ``norm.q_a``, ``attn.q_b`` (``q_proj`` when ``q_lora_rank`` is null is the plain
``attn.q``), ``attn.kv_a`` (``kv_a_proj_with_mqa``), ``norm.kv_a``, ``attn.kv_b``; MoE
``moe.shared.gate/up/down`` (Qwen2-MoE ``shared_expert``, DeepSeek ``shared_experts``, Pangu
``shared_expert``), ``moe.shared.router`` (Qwen2-MoE ``shared_expert_gate``),
``moe.router_bias`` (DeepSeek-V3 ``e_score_correction_bias``), ``moe.router_scale`` (Pangu).
"""

from __future__ import annotations

from .rules import Rule, split_gate_up, split_qkv_concat

#: Text-model prefixes: plain CausalLM checkpoints and multimodal wrappers (Gemma 3 4B+).
_P = r"(?:model\.|model\.language_model\.|language_model\.model\.)"
_L = _P + r"layers\.(?P<layer>\d+)\."
_E = r"(?P<expert>\d+)\."

#: Families whose ``post_attention_layernorm`` normalises the attention output.
SANDWICH_FAMILIES = ("gemma2", "gemma3")


def decoder_rules(family: str, sandwich: bool = False) -> list[Rule]:
    """Rules for one decoder family. ``sandwich``: the layer has separate pre/post MLP norms
    (Gemma 2/3 always; Pangu when its config says ``sandwich_norm``)."""
    post_attn = "norm.attn_post" if (family in SANDWICH_FAMILIES or sandwich) else "norm.mlp"
    a, m = _L + r"self_attn\.", _L + r"mlp\."
    rules = [
        Rule(_P + r"embed_tokens\.weight", "embed"),
        Rule(r"(?:language_model\.)?lm_head\.weight", "lm_head"),
        Rule(_P + r"norm\.weight", "norm.final"),
        Rule(_L + r"input_layernorm\.weight", "norm.attn"),
        Rule(_L + r"post_attention_layernorm\.weight", post_attn),
        Rule(_L + r"pre_feedforward_layernorm\.weight", "norm.mlp"),
        Rule(_L + r"post_feedforward_layernorm\.weight", "norm.mlp_post"),
        Rule(_L + r"pre_mlp_layernorm\.weight", "norm.mlp"),
        Rule(_L + r"post_mlp_layernorm\.weight", "norm.mlp_post"),
        # attention, separate projections (+ optional biases, q/k norms)
        Rule(a + r"q_proj\.weight", "attn.q"),
        Rule(a + r"k_proj\.weight", "attn.k"),
        Rule(a + r"v_proj\.weight", "attn.v"),
        Rule(a + r"o_proj\.weight", "attn.o"),
        Rule(a + r"q_proj\.bias", "attn.q_bias"),
        Rule(a + r"k_proj\.bias", "attn.k_bias"),
        Rule(a + r"v_proj\.bias", "attn.v_bias"),
        Rule(a + r"o_proj\.bias", "attn.o_bias"),
        Rule(a + r"q_norm\.weight", "norm.q"),
        Rule(a + r"k_norm\.weight", "norm.k"),
        # Phi-3 fused projections
        Rule(a + r"qkv_proj\.(?:weight|bias)", split=split_qkv_concat),
        Rule(m + r"gate_up_proj\.weight", split=split_gate_up),
        # DeepSeek multi-head latent attention
        Rule(a + r"q_a_proj\.weight", "attn.q_a"),
        Rule(a + r"q_a_layernorm\.weight", "norm.q_a"),
        Rule(a + r"q_b_proj\.weight", "attn.q_b"),
        Rule(a + r"kv_a_proj_with_mqa\.weight", "attn.kv_a"),
        Rule(a + r"kv_a_layernorm\.weight", "norm.kv_a"),
        Rule(a + r"kv_b_proj\.weight", "attn.kv_b"),
        # dense MLP
        Rule(m + r"gate_proj\.weight", "mlp.gate"),
        Rule(m + r"up_proj\.weight", "mlp.up"),
        Rule(m + r"down_proj\.weight", "mlp.down"),
        # MoE: Qwen-MoE / DeepSeek / Pangu naming
        Rule(m + r"gate\.weight", "moe.router"),
        Rule(m + r"gate\.e_score_correction_bias", "moe.router_bias"),
        Rule(m + r"router_scale", "moe.router_scale"),
        Rule(m + r"experts\." + _E + r"gate_proj\.weight", "moe.expert.gate"),
        Rule(m + r"experts\." + _E + r"up_proj\.weight", "moe.expert.up"),
        Rule(m + r"experts\." + _E + r"down_proj\.weight", "moe.expert.down"),
        Rule(m + r"shared_experts?\.gate_proj\.weight", "moe.shared.gate"),
        Rule(m + r"shared_experts?\.up_proj\.weight", "moe.shared.up"),
        Rule(m + r"shared_experts?\.down_proj\.weight", "moe.shared.down"),
        Rule(m + r"shared_expert_gate\.weight", "moe.shared.router"),
        # MoE: Mixtral naming (w1 = gate, w3 = up, w2 = down)
        Rule(_L + r"block_sparse_moe\.gate\.weight", "moe.router"),
        Rule(_L + r"block_sparse_moe\.experts\." + _E + r"w1\.weight", "moe.expert.gate"),
        Rule(_L + r"block_sparse_moe\.experts\." + _E + r"w3\.weight", "moe.expert.up"),
        Rule(_L + r"block_sparse_moe\.experts\." + _E + r"w2\.weight", "moe.expert.down"),
    ]
    return rules
