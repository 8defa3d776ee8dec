"""Disguises of the real all-MiniLM-L6-v2 (BERT) that keep its function, and a forward pass to
verify them.

BERT is post-LN: ``x = LayerNorm(x + block(x))`` with a gain and a bias per dimension after
mean-centring, so neither a residual rotation nor the norm folding of the llama disguises is
function-preserving here, and its GELU MLP is not gated, so there is no up/down rescaling
(GELU is not homogeneous). What applies is every transform that commutes with a LayerNorm and
with attention: a residual *permutation* (gains, biases, embedding columns, readers' columns
and writers' rows permuted alike), MLP unit and head permutations, per-head q·s / k/s (the
biases too; BERT has no RoPE), per-head V/O maps, the embedding scaling (word, position and
type embeddings times c: the embedding LayerNorm removes c up to its epsilon of 1e-12) and a
vocabulary permutation.

The forward follows Hugging Face's ``BertModel`` (absolute positions, token type 0, no
padding mask, exact GELU) and returns the last hidden states, the function a sentence
embedder is. The disguised model is written as a copy of the sentence-transformers folder
with a new ``model.safetensors`` (float32, as shipped) and, for a vocabulary permutation, a
new ``tokenizer.json`` and ``vocab.txt``.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from . import reparam

State = dict[str, torch.Tensor]          # float64, BERT's own names
Disguise = Callable[[dict[str, Any], State, list[str], np.random.Generator],
                    tuple[State, list[str]]]

_LAYER = "encoder.layer.{i}."
#: BERT's attention names as the llama names :mod:`.reparam` works on.
_AS_LLAMA = {"attention.self.query": "self_attn.q_proj", "attention.self.key": "self_attn.k_proj",
             "attention.self.value": "self_attn.v_proj",
             "attention.output.dense": "self_attn.o_proj"}


def read(folder: Path) -> tuple[dict[str, Any], State, list[str]]:
    cfg_json = json.loads((folder / "config.json").read_text())
    cfg = {"hidden": cfg_json["hidden_size"], "layers": cfg_json["num_hidden_layers"],
           "heads": cfg_json["num_attention_heads"], "ffn": cfg_json["intermediate_size"],
           "eps": cfg_json["layer_norm_eps"], "vocab": cfg_json["vocab_size"]}
    cfg["head_dim"] = cfg["hidden"] // cfg["heads"]
    state = {k: v.double() for k, v in load_file(str(folder / "model.safetensors")).items()
             if v.is_floating_point()}
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"]
    tok = [""] * len(vocab)
    for t, i in vocab.items():
        tok[i] = t
    return cfg, state, tok


def forward(cfg: dict[str, Any], s: State, ids: torch.Tensor) -> torch.Tensor:
    """Last hidden states (batch x tokens x hidden) of BertModel, float64."""
    eps, h, hd = cfg["eps"], cfg["heads"], cfg["head_dim"]
    b, t = ids.shape

    def ln(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), s[name + ".weight"], s[name + ".bias"], eps)

    def lin(x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, s[name + ".weight"], s[name + ".bias"])

    e = "embeddings."
    x = (s[e + "word_embeddings.weight"][ids] + s[e + "position_embeddings.weight"][:t]
         + s[e + "token_type_embeddings.weight"][0])
    x = ln(x, e + "LayerNorm")
    for i in range(cfg["layers"]):
        p = _LAYER.format(i=i)
        q, k, v = (lin(x, p + f"attention.self.{n}").view(b, t, h, hd).transpose(1, 2)
                   for n in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v
        a = lin(att.transpose(1, 2).reshape(b, t, h * hd), p + "attention.output.dense")
        x = ln(x + a, p + "attention.output.LayerNorm")
        m = lin(F.gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
        x = ln(x + m, p + "output.LayerNorm")
    return x


def permute_residual(cfg: dict[str, Any], s: State, tok: list[str],
                     rng: np.random.Generator) -> tuple[State, list[str]]:
    """One permutation of the hidden dimensions everywhere (LayerNorm commutes with it)."""
    p = torch.from_numpy(rng.permutation(cfg["hidden"]))
    d = cfg["hidden"]
    out = {}
    for k, v in s.items():
        writer = k.endswith(("attention.output.dense.weight", "output.dense.weight"))
        head_side = ".attention.self." in k or k.startswith("pooler")   # not residual-sized
        if v.ndim == 1 and v.shape[0] == d and not head_side:
            out[k] = v[p]                                  # gains, biases, writers' biases
        elif writer:
            out[k] = v[p]                                  # writers' rows
        elif v.ndim == 2 and v.shape[1] == d and not k.startswith("pooler"):
            out[k] = v[:, p]                               # embeddings, readers' columns
        elif k == "pooler.dense.weight":
            out[k] = v[:, p]                               # pooler reads the stream only
        else:
            out[k] = v
    return out, tok


def _via_llama(name: str) -> Disguise:
    """A per-layer attention re-parameterisation of :mod:`.reparam` on BERT's tensors (one
    KV head per query head: BERT has no GQA)."""
    from benchmarks.lineage.tiny_lm import LMConfig

    def apply(cfg: dict[str, Any], s: State, tok: list[str],
              rng: np.random.Generator) -> tuple[State, list[str]]:
        shape = LMConfig(hidden=cfg["hidden"], layers=cfg["layers"], heads=cfg["heads"],
                         kv_heads=cfg["heads"], head_dim=cfg["head_dim"], ffn=cfg["ffn"])
        names = {}
        for i in range(cfg["layers"]):
            for bert, llama in _AS_LLAMA.items():
                for part in ("weight", "bias"):
                    names[f"model.layers.{i}.{llama}.{part}"] = \
                        f"{_LAYER.format(i=i)}{bert}.{part}"
        st = {ll: s[b] for ll, b in names.items()}
        new = reparam.SHARED[name](st, shape, rng)
        return {**s, **{names[k]: v for k, v in new.items()}}, tok
    return apply


def permute_units(cfg: dict[str, Any], s: State, tok: list[str],
                  rng: np.random.Generator) -> tuple[State, list[str]]:
    """The GELU MLP's units: intermediate rows (and bias), output.dense columns."""
    out = dict(s)
    for i in range(cfg["layers"]):
        p = torch.from_numpy(rng.permutation(cfg["ffn"]))
        pre = _LAYER.format(i=i)
        out[pre + "intermediate.dense.weight"] = s[pre + "intermediate.dense.weight"][p]
        out[pre + "intermediate.dense.bias"] = s[pre + "intermediate.dense.bias"][p]
        out[pre + "output.dense.weight"] = s[pre + "output.dense.weight"][:, p]
    return out, tok


def scale_embedding(cfg: dict[str, Any], s: State, tok: list[str],
                    rng: np.random.Generator, c: float = 5.0) -> tuple[State, list[str]]:
    out = dict(s)
    for n in ("word", "position", "token_type"):
        k = f"embeddings.{n}_embeddings.weight"
        out[k] = s[k] * c
    return out, tok


def permute_vocab(cfg: dict[str, Any], s: State, tok: list[str],
                  rng: np.random.Generator) -> tuple[State, list[str]]:
    p = torch.from_numpy(rng.permutation(cfg["vocab"]))
    out = dict(s)
    out["embeddings.word_embeddings.weight"] = s["embeddings.word_embeddings.weight"][p]
    return out, [tok[int(j)] for j in p]


DISGUISES: dict[str, Disguise] = {
    "permute_residual": permute_residual, "permute_units": permute_units,
    **{n: _via_llama(n) for n in ("permute_heads", "scale_qk", "vo_maps")},
    "scale_embedding": scale_embedding, "permute_vocab": permute_vocab,
}


def everything(cfg: dict[str, Any], s: State, tok: list[str],
               rng: np.random.Generator) -> tuple[State, list[str]]:
    """Every disguise above in turn, so that no tensor is left as it was stored (the single
    disguises leave some byte-identical, which ``identity`` finds)."""
    for fn in _SINGLE.values():
        s, tok = fn(cfg, s, tok, rng)
    return s, tok


_SINGLE = dict(DISGUISES)
DISGUISES["all"] = everything


def hidden_diff(cfg: dict[str, Any], base: State, cand: State, base_tok: list[str],
                cand_tok: list[str], ids: torch.Tensor) -> dict[str, float]:
    """Max |difference| of the token-by-token inner products of the last hidden states on the
    same text (ids mapped through the token strings), relative to the max |inner product|.
    Inner products, because a residual permutation permutes the output dimensions too (a
    sentence embedder's similarities, all it is used for, are unchanged); every other change
    of the function shows in them."""
    pos = {t: i for i, t in enumerate(cand_tok)}
    order = torch.tensor([pos[t] for t in base_tok])
    with torch.no_grad():
        ha, hb = forward(cfg, base, ids), forward(cfg, cand, order[ids])
    a, b = ha @ ha.transpose(1, 2), hb @ hb.transpose(1, 2)
    diff = float((a - b).abs().max())
    return {"max_abs_logit_diff": diff, "max_abs_logit": float(a.abs().max()),
            "relative": diff / float(a.abs().max())}


def drop_layers(cfg: dict[str, Any], s: State, drop: tuple[int, ...]
                ) -> tuple[dict[str, Any], State]:
    keep = [i for i in range(cfg["layers"]) if i not in drop]
    out = {k: v for k, v in s.items() if not k.startswith("encoder.layer.")}
    for j, i in enumerate(keep):
        pre = _LAYER.format(i=i)
        out.update({_LAYER.format(i=j) + k[len(pre):]: v for k, v in s.items()
                    if k.startswith(pre)})
    return {**cfg, "layers": len(keep)}, out


def save(src: Path, cfg: dict[str, Any], s: State, tok: list[str], out: Path) -> Path:
    """A copy of the sentence-transformers folder ``src`` with these weights (float32) and
    this vocabulary."""
    shutil.copytree(src, out, dirs_exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in s.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    conf = json.loads((src / "config.json").read_text())
    conf["num_hidden_layers"] = cfg["layers"]
    (out / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
    tj = json.loads((src / "tokenizer.json").read_text())
    tj["model"]["vocab"] = {t: i for i, t in enumerate(tok)}
    new_id = {t: i for i, t in enumerate(tok)}
    for added in tj.get("added_tokens", []):
        added["id"] = new_id.get(added["content"], added["id"])
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    (out / "vocab.txt").write_text("".join(t + "\n" for t in tok), encoding="utf-8")
    return out


def load_saved(out: Path) -> State:
    return {k: v.double() for k, v in load_file(str(out / "model.safetensors")).items()
            if v.is_floating_point()}


class Adapter:
    """This module as ``run.RealBase`` drives it (``save`` copies the folder it was read from)."""

    DISGUISES = DISGUISES

    def __init__(self, src: Path) -> None:
        self.src = src

    read = staticmethod(read)
    diff = staticmethod(hidden_diff)
    load = staticmethod(load_saved)
    drop_layers = staticmethod(drop_layers)

    def save(self, cfg: dict[str, Any], s: State, tok: list[str], out: Path) -> Path:
        return save(self.src, cfg, s, tok, out)
