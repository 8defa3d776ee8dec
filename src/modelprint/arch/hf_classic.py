"""GPT-2, BERT and GPT-NeoX: the older naming schemes, with biases and LayerNorm biases.

Choices documented here because they are conventions, not facts of the checkpoints:

* **GPT-2** stores its projections as ``Conv1D`` weights ``(in, out)``: every one is a slot
  with ``transpose=True``. ``c_attn`` is split after the transpose into q, k, v row thirds
  (``c_attn.bias`` likewise). ``mlp.c_fc``/``mlp.c_proj`` are ``mlp.up``/``mlp.down``. The
  ``attn.bias`` / ``attn.masked_bias`` tensors are causal-mask buffers, not biases: no rule
  matches them. Official checkpoints omit the ``transformer.`` prefix, fine-tunes keep it.
* **BERT** is post-LN: ``attention.output.LayerNorm`` (after attention) is ``norm.attn`` and
  ``output.LayerNorm`` (after the MLP) is ``norm.mlp``; their biases are the extra roles
  ``norm.attn_bias`` / ``norm.mlp_bias``. ``intermediate.dense`` is ``mlp.up``,
  ``output.dense`` is ``mlp.down``. Task heads (``pooler``, ``cls.*``) are extra roles or
  ignored. The ``bert.`` prefix of ``BertFor*`` checkpoints is optional.
* **GPT-NeoX** fuses ``query_key_value`` per head, interleaved as (heads, 3, head_dim).

LayerNorm biases elsewhere follow the same ``<norm role>_bias`` pattern (``norm.final_bias``,
``norm.embed_bias``); MLP biases are ``mlp.up_bias`` / ``mlp.down_bias``.
"""

from __future__ import annotations

from .rules import Rule, split_qkv_concat, split_qkv_per_head


def gpt2_rules() -> list[Rule]:
    p = r"(?:transformer\.)?"
    h = p + r"h\.(?P<layer>\d+)\."
    return [
        Rule(p + r"wte\.weight", "embed"),
        Rule(p + r"wpe\.weight", "embed.pos"),
        Rule(r"lm_head\.weight", "lm_head"),
        Rule(p + r"ln_f\.weight", "norm.final"),
        Rule(p + r"ln_f\.bias", "norm.final_bias"),
        Rule(h + r"ln_1\.weight", "norm.attn"),
        Rule(h + r"ln_1\.bias", "norm.attn_bias"),
        Rule(h + r"ln_2\.weight", "norm.mlp"),
        Rule(h + r"ln_2\.bias", "norm.mlp_bias"),
        Rule(h + r"attn\.c_attn\.weight", split=split_qkv_concat, transpose=True),
        Rule(h + r"attn\.c_attn\.bias", split=split_qkv_concat),
        Rule(h + r"attn\.c_proj\.weight", "attn.o", transpose=True),
        Rule(h + r"attn\.c_proj\.bias", "attn.o_bias"),
        Rule(h + r"mlp\.c_fc\.weight", "mlp.up", transpose=True),
        Rule(h + r"mlp\.c_fc\.bias", "mlp.up_bias"),
        Rule(h + r"mlp\.c_proj\.weight", "mlp.down", transpose=True),
        Rule(h + r"mlp\.c_proj\.bias", "mlp.down_bias"),
    ]


def bert_rules() -> list[Rule]:
    p = r"(?:bert\.)?"
    e = p + r"embeddings\."
    lay = p + r"encoder\.layer\.(?P<layer>\d+)\."
    rules = [
        Rule(e + r"word_embeddings\.weight", "embed"),
        Rule(e + r"position_embeddings\.weight", "embed.pos"),
        Rule(e + r"token_type_embeddings\.weight", "embed.type"),
        Rule(e + r"LayerNorm\.weight", "norm.embed"),
        Rule(e + r"LayerNorm\.bias", "norm.embed_bias"),
        Rule(p + r"pooler\.dense\.weight", "pooler"),
        Rule(p + r"pooler\.dense\.bias", "pooler_bias"),
        Rule(lay + r"attention\.output\.dense\.weight", "attn.o"),
        Rule(lay + r"attention\.output\.dense\.bias", "attn.o_bias"),
        Rule(lay + r"attention\.output\.LayerNorm\.weight", "norm.attn"),
        Rule(lay + r"attention\.output\.LayerNorm\.bias", "norm.attn_bias"),
        Rule(lay + r"intermediate\.dense\.weight", "mlp.up"),
        Rule(lay + r"intermediate\.dense\.bias", "mlp.up_bias"),
        Rule(lay + r"output\.dense\.weight", "mlp.down"),
        Rule(lay + r"output\.dense\.bias", "mlp.down_bias"),
        Rule(lay + r"output\.LayerNorm\.weight", "norm.mlp"),
        Rule(lay + r"output\.LayerNorm\.bias", "norm.mlp_bias"),
    ]
    for name, role in (("query", "attn.q"), ("key", "attn.k"), ("value", "attn.v")):
        rules.append(Rule(lay + rf"attention\.self\.{name}\.weight", role))
        rules.append(Rule(lay + rf"attention\.self\.{name}\.bias", role + "_bias"))
    return rules


def neox_rules() -> list[Rule]:
    p = r"gpt_neox\."
    lay = p + r"layers\.(?P<layer>\d+)\."
    return [
        Rule(p + r"embed_in\.weight", "embed"),
        Rule(r"embed_out\.weight", "lm_head"),
        Rule(p + r"final_layer_norm\.weight", "norm.final"),
        Rule(p + r"final_layer_norm\.bias", "norm.final_bias"),
        Rule(lay + r"input_layernorm\.weight", "norm.attn"),
        Rule(lay + r"input_layernorm\.bias", "norm.attn_bias"),
        Rule(lay + r"post_attention_layernorm\.weight", "norm.mlp"),
        Rule(lay + r"post_attention_layernorm\.bias", "norm.mlp_bias"),
        Rule(lay + r"attention\.query_key_value\.(?:weight|bias)", split=split_qkv_per_head),
        Rule(lay + r"attention\.dense\.weight", "attn.o"),
        Rule(lay + r"attention\.dense\.bias", "attn.o_bias"),
        Rule(lay + r"mlp\.dense_h_to_4h\.weight", "mlp.up"),
        Rule(lay + r"mlp\.dense_h_to_4h\.bias", "mlp.up_bias"),
        Rule(lay + r"mlp\.dense_4h_to_h\.weight", "mlp.down"),
        Rule(lay + r"mlp\.dense_4h_to_h\.bias", "mlp.down_bias"),
    ]
