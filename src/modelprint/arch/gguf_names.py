"""GGUF tensor names (llama.cpp's ``gguf-py`` constants) -> canonical roles.

The family comes from ``general.architecture``; GGUF names are the same across
architectures, so one rule set serves all, with two family-dependent meanings:

* Phi-3 stores its fused ``gate_up_proj`` as ``ffn_up`` with ``2 * ff`` rows (gate first):
  split for ``phi3`` only.
* BERT's post-LN norms are ``attn_output_norm`` (``norm.attn``) and ``layer_output_norm``
  (``norm.mlp``).

Layout facts the source layer guarantees (see ``sources.base``): shapes are HF row-major,
q/k rows are already un-permuted, GPT-2's Conv1D weights were transposed by the converter, and
fused ``attn_qkv`` is Q then K then V rows (the converter de-interleaves GPT-NeoX/BLOOM
per-head layouts). Experts are 3-D ``ffn_{gate,up,down}_exps`` tensors of shape
``(E, rows, cols)``: one slot per expert, read by indexing axis 0.

Gemma norms: llama.cpp's converter adds 1 to every ``*norm.weight`` of Gemma models
(``Gemma*Model.modify_tensors``: ``data_torch = data_torch + 1``), so GGUF Gemma norms are
already the effective scale and their :attr:`ArchInfo.norm_offset` is 0.0, unlike HF Gemma
(1.0). DeepSeek-V2 and V3 both convert to ``deepseek2``; the GGUF cannot tell them apart.
"""

from __future__ import annotations

from .rules import Rule, split_gate_up, split_qkv_concat

#: ``general.architecture`` -> canonical family name.
GGUF_FAMILIES: dict[str, str] = {
    "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe", "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3",
    "phi3": "phi3", "gpt2": "gpt2", "bert": "bert", "gptneox": "gpt_neox",
    "deepseek2": "deepseek_v2",
}

_B = r"blk\.(?P<layer>\d+)\."


def _plain(name: str, role: str, bias_role: str | None = None) -> list[Rule]:
    rules = [Rule(_B + name + r"\.weight", role)]
    if bias_role:
        rules.append(Rule(_B + name + r"\.bias", bias_role))
    return rules


def gguf_rules(family: str) -> list[Rule]:
    """Rules for GGUF files of ``family`` (canonical name)."""
    rules = [
        Rule(r"token_embd\.weight", "embed"),
        Rule(r"position_embd\.weight", "embed.pos"),
        Rule(r"token_types\.weight", "embed.type"),
        Rule(r"token_embd_norm\.weight", "norm.embed"),
        Rule(r"token_embd_norm\.bias", "norm.embed_bias"),
        Rule(r"output\.weight", "lm_head"),
        Rule(r"output_norm\.weight", "norm.final"),
        Rule(r"output_norm\.bias", "norm.final_bias"),
        Rule(_B + r"attn_qkv\.(?:weight|bias)", split=split_qkv_concat),
        Rule(_B + r"ffn_gate_exps\.weight", "moe.expert.gate", stacked=True),
        Rule(_B + r"ffn_up_exps\.weight", "moe.expert.up", stacked=True),
        Rule(_B + r"ffn_down_exps\.weight", "moe.expert.down", stacked=True),
        Rule(_B + r"exp_probs_b(?:\.bias)?", "moe.router_bias"),
    ]
    if family == "phi3":
        rules.append(Rule(_B + r"ffn_up\.weight", split=split_gate_up))
    table = [
        ("attn_norm", "norm.attn", "norm.attn_bias"),
        ("attn_output_norm", "norm.attn", "norm.attn_bias"),
        ("layer_output_norm", "norm.mlp", "norm.mlp_bias"),
        ("post_attention_norm", "norm.attn_post", None),
        ("ffn_norm", "norm.mlp", "norm.mlp_bias"),
        ("post_ffw_norm", "norm.mlp_post", None),
        ("attn_q", "attn.q", "attn.q_bias"),
        ("attn_k", "attn.k", "attn.k_bias"),
        ("attn_v", "attn.v", "attn.v_bias"),
        ("attn_output", "attn.o", "attn.o_bias"),
        ("attn_q_norm", "norm.q", None),
        ("attn_k_norm", "norm.k", None),
        ("attn_q_a", "attn.q_a", None),
        ("attn_q_a_norm", "norm.q_a", None),
        ("attn_q_b", "attn.q_b", None),
        ("attn_kv_a_mqa", "attn.kv_a", None),
        ("attn_kv_a_norm", "norm.kv_a", None),
        ("attn_kv_b", "attn.kv_b", None),
        ("attn_k_b", "attn.k_b", None),
        ("attn_v_b", "attn.v_b", None),
        ("ffn_gate", "mlp.gate", "mlp.gate_bias"),
        ("ffn_up", "mlp.up", "mlp.up_bias"),
        ("ffn_down", "mlp.down", "mlp.down_bias"),
        ("ffn_gate_inp", "moe.router", None),
        ("ffn_gate_inp_shexp", "moe.shared.router", None),
        ("ffn_gate_shexp", "moe.shared.gate", None),
        ("ffn_up_shexp", "moe.shared.up", None),
        ("ffn_down_shexp", "moe.shared.down", None),
    ]
    for name, role, bias in table:
        rules.extend(_plain(name, role, bias))
    return rules
