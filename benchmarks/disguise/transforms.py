"""Function-preserving disguises of a dense decoder, and the derivations they are composed with.

A *disguise* re-parameterises a checkpoint so that it computes the same function while its
stored tensors look unrelated to the original's: the residual stream rotated (QuaRot,
SpinQuant, SliceGPT do this for quantisation; a copier can do it to hide), hidden units and
heads relabelled, symmetric scalings pushed between the two matrices of a product, the
vocabulary relabelled or extended, the storage layout changed. Each transform here takes a
:class:`Subject` (a tiny_lm :class:`CausalLM` plus the tokenizer its ids belong to) and returns
a new one; :func:`logit_diff` verifies function preservation with a torch forward pass.

Which are exact: every transform is exact in real arithmetic except the embedding scaling,
whose RMSNorm epsilon sees ``c^2`` times the mean square (an effective ``eps / c^2``), so it is
approximate by design; :func:`logit_diff` measures it. Storage rounding (F32, or BF16 for the
SmolLM2 copies) is measured separately by the runner on the saved files.

Only dense llama / qwen2 models are transformed (the bases are dense); the MoE upcycle is a
*composition* applied after the disguise (``compose.py``). The per-layer re-parameterisations
that Gemma 3 shares live in ``reparam.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks.lineage import derive
from benchmarks.lineage.bpe import Encoder, train_merges
from benchmarks.lineage.ops import write_card
from benchmarks.lineage.tiny_lm import CausalLM, save_model
from safetensors.torch import load_file, save_file

from . import reparam


@dataclass
class Subject:
    """A model and the tokenizer its ids belong to.

    ``origin[j]`` is the base model's id of this model's token ``j`` (``-1`` for a token the
    base does not have), so logits can be compared across a vocabulary relabelling.
    ``fused`` asks :func:`save` to write Phi-3's fused ``qkv_proj`` / ``gate_up_proj``.
    """

    model: CausalLM
    enc: Encoder
    origin: np.ndarray
    fused: bool = False
    steps: list[str] = field(default_factory=list)

    @classmethod
    def base(cls, model: CausalLM, enc: Encoder) -> Subject:
        return cls(model, enc, np.arange(model.cfg.vocab))

    def derive(self, model: CausalLM, step: str, **kw: Any) -> Subject:
        return replace(self, model=model, steps=[*self.steps, step], **kw)


def _clone(m: CausalLM) -> CausalLM:
    out = copy.deepcopy(m)
    out.double()          # transform in float64; the stored dtype is applied when saving
    return out


def _layers(m: CausalLM) -> list[Any]:
    if m.cfg.family not in ("llama", "qwen2"):
        raise ValueError(f"disguises apply to dense llama/qwen2 models, not {m.cfg.family}")
    return list(m.model.layers)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- the transforms -------------------------------------------------------------------------

def untie(s: Subject) -> Subject:
    """Store the tied embedding as a separate ``lm_head`` (the same values, a flag changed)."""
    m = s.model
    if not m.cfg.tie:
        return s
    out = CausalLM(m.cfg.with_(tie=False)).double()
    out.load_state_dict({k: v.double() for k, v in m.state_dict().items()}, strict=False)
    with torch.no_grad():
        out.lm_head.weight.copy_(m.model.embed_tokens.weight)
    return s.derive(out, "untie")


@torch.no_grad()
def fold_norms(s: Subject) -> Subject:
    """Move every RMSNorm gain into the matrices that read the normed stream (q/k/v for the
    attention norm, gate/up for the MLP norm, lm_head for the final norm; the embedding is
    untied first) and set the gains to 1: the precondition of a residual rotation, since
    ``rms(x Q) = rms(x)`` but ``(x Q) * g != (x * g) Q``."""
    s = untie(s)
    m = _clone(s.model)
    for layer in _layers(m):
        a, f = layer.self_attn, layer.mlp
        g = layer.input_layernorm.weight
        for p in (a.q_proj, a.k_proj, a.v_proj):
            p.weight.mul_(g[None, :])
        g = layer.post_attention_layernorm.weight
        for p in (f.gate_proj, f.up_proj):
            p.weight.mul_(g[None, :])
        layer.input_layernorm.weight.fill_(1.0)
        layer.post_attention_layernorm.weight.fill_(1.0)
    m.lm_head.weight.mul_(m.model.norm.weight[None, :])
    m.model.norm.weight.fill_(1.0)
    return s.derive(m, "fold_norms")


@torch.no_grad()
def rotate(s: Subject, q: np.ndarray, label: str) -> Subject:
    """Fold the norms, then rotate the residual stream by the orthogonal ``q`` (d x d):
    embedding E -> E Q, readers W -> W Q, writers (o_proj, down_proj) -> Q^T W."""
    s = fold_norms(s)
    m = _clone(s.model)
    qt = reparam.tensor64(q)
    m.model.embed_tokens.weight.copy_(m.model.embed_tokens.weight @ qt)
    m.lm_head.weight.copy_(m.lm_head.weight @ qt)
    for layer in _layers(m):
        a, f = layer.self_attn, layer.mlp
        for p in (a.q_proj, a.k_proj, a.v_proj, f.gate_proj, f.up_proj):
            p.weight.copy_(p.weight @ qt)
        for p in (a.o_proj, f.down_proj):
            p.weight.copy_(qt.T @ p.weight)
    return s.derive(m, f"rotate({label})")


def rotate_orthogonal(s: Subject, seed: int) -> Subject:
    return rotate(s, reparam.random_orthogonal(s.model.cfg.hidden, seed), "random orthogonal")


def rotate_hadamard(s: Subject, seed: int) -> Subject:
    q, label = reparam.randomised_hadamard(s.model.cfg.hidden, seed)
    return rotate(s, q, f"randomised Hadamard, {label}")


@torch.no_grad()
def reparameterise(s: Subject, name: str, seed: int) -> Subject:
    """One of :data:`reparam.SHARED` (unit / head permutation, q/k, v/o, up/down scaling)
    applied to every layer of the model's HF-named tensors."""
    _layers(s.model)
    m = _clone(s.model)
    m.load_state_dict(reparam.SHARED[name](dict(m.state_dict()), m.cfg, _rng(seed)))
    return s.derive(m, name)


def permute_units(s: Subject, seed: int) -> Subject:
    return reparameterise(s, "permute_units", seed)


@torch.no_grad()
def scale_embedding(s: Subject, c: float = 5.0) -> Subject:
    """E * c and every residual writer (o_proj, down_proj) * c: the whole residual stream is
    c times larger and each RMSNorm removes c again (up to its epsilon). A tied lm_head is
    E * c too, so the final norm gain is divided by c."""
    m = _clone(s.model)
    m.model.embed_tokens.weight.mul_(c)
    for layer in _layers(m):
        layer.self_attn.o_proj.weight.mul_(c)
        layer.mlp.down_proj.weight.mul_(c)
    if m.cfg.tie:
        m.model.norm.weight.div_(c)
    return s.derive(m, f"scale_embedding(c={c:g})")


@torch.no_grad()
def permute_vocab(s: Subject, seed: int) -> Subject:
    """Relabel token ids: embedding and lm_head rows, the tokenizer's ids and the bos/eos
    ids, all with one permutation (new id j is old id p[j]), so the saved tokenizer agrees and
    a token keeps its string."""
    m = _clone(s.model)
    p = _rng(seed).permutation(m.cfg.vocab)
    inv = np.argsort(p)
    pt = torch.from_numpy(p)
    m.model.embed_tokens.weight.copy_(m.model.embed_tokens.weight[pt])
    if not m.cfg.tie:
        m.lm_head.weight.copy_(m.lm_head.weight[pt])
    vocab = {tok: int(inv[i]) for tok, i in s.enc.vocab.items()}
    enc = Encoder(s.enc.merges, vocab, eot=s.enc.eot_token)
    m.cfg = m.cfg.with_(bos=int(inv[m.cfg.bos]), eos=int(inv[m.cfg.eos]))
    return s.derive(m, "permute_vocab", enc=enc, origin=s.origin[p])


def extend_vocab(s: Subject, texts: list[str], new_tokens: int) -> Subject:
    """New merges learnt on ``texts`` appended to the tokenizer, new rows initialised from
    their pieces (:func:`derive.extend_vocab`); the old tokens keep their ids and logits."""
    extra = train_merges(texts, new_tokens, start=s.enc.merges)
    vocab = dict(s.enc.vocab)
    for a, b in extra:
        vocab.setdefault(a + b, len(vocab))
    new = Encoder(s.enc.merges + extra, vocab, eot=s.enc.eot_token)
    m = derive.extend_vocab(s.model, s.enc, new)
    origin = np.concatenate([s.origin, -np.ones(len(new) - len(s.enc), dtype=np.int64)])
    return s.derive(m, f"extend_vocab(+{len(new) - len(s.enc)})", enc=new, origin=origin)


def fuse_qkv(s: Subject) -> Subject:
    """Save with Phi-3's fused layout (``qkv_proj`` = Q then K then V rows, ``gate_up_proj``
    = gate then up rows). The weights are unchanged; the layout is applied by :func:`save`."""
    if s.model.cfg.qkv_bias:
        raise ValueError("Phi-3's fused qkv_proj has no bias; a qwen2 model has q/k/v biases")
    return s.derive(s.model, "fuse_qkv(phi3)", fused=True)


#: name -> (transform(subject, seed), applies(subject) or a reason it does not)
Transform = Callable[[Subject, int], Subject]


def registry(texts: list[str], new_tokens: int) -> dict[str, Transform]:
    """Every disguise by name, each a function of (subject, seed)."""
    def rotation_fold_units(s: Subject, seed: int) -> Subject:
        return permute_units(rotate_orthogonal(s, seed), seed + 1)

    return {
        "rotate_orthogonal": rotate_orthogonal,
        "rotate_hadamard": rotate_hadamard,
        **{n: (lambda s, seed, n=n: reparameterise(s, n, seed)) for n in reparam.SHARED},
        "scale_embedding": lambda s, _seed: scale_embedding(s),
        "permute_vocab": permute_vocab,
        "extend_vocab": lambda s, _seed: extend_vocab(s, texts, new_tokens),
        "untie": lambda s, _seed: untie(s),
        "fuse_qkv": lambda s, _seed: fuse_qkv(s),
        "rotation+units": rotation_fold_units,
    }


def not_applicable(name: str, s: Subject) -> str | None:
    """Why a transform does not apply to this base (None when it does)."""
    if name == "untie" and not s.model.cfg.tie:
        return "the base is untied; tying two different matrices is not function-preserving"
    if name == "fuse_qkv" and s.model.cfg.qkv_bias:
        return ("Phi-3's fused qkv_proj has no bias (qwen2 has q/k/v biases): "
                "no supported fused family holds this model")
    return None


# -- function preservation ---------------------------------------------------------------

@torch.no_grad()
def logit_diff(base: Subject, cand: Subject, ids: torch.Tensor,
               dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Max |logit difference| between the base on ``ids`` and the candidate on the same text
    (ids relabelled through ``origin``), over the tokens both have; and the max |logit|."""
    pos = np.full(int(base.origin.max()) + 1, -1)
    keep = np.nonzero(cand.origin >= 0)[0]
    pos[cand.origin[keep]] = keep
    cids = torch.from_numpy(pos[ids.numpy()])
    a = copy.deepcopy(base.model).to(dtype)(ids)
    b = copy.deepcopy(cand.model).to(dtype)(cids)
    k = torch.from_numpy(keep)
    diff = float((b[..., k] - a[..., torch.from_numpy(cand.origin[keep])]).abs().max())
    scale = float(a.abs().max())
    return {"max_abs_logit_diff": diff, "max_abs_logit": scale, "relative": diff / scale}


# -- saving ----------------------------------------------------------------------------------

def _phi3_state(m: CausalLM) -> dict[str, torch.Tensor]:
    state = m.hf_state()
    for i in range(m.cfg.layers):
        p = f"model.layers.{i}."
        qkv = [state.pop(f"{p}self_attn.{x}_proj.weight") for x in "qkv"]
        state[f"{p}self_attn.qkv_proj.weight"] = torch.cat(qkv).contiguous()
        gu = [state.pop(f"{p}mlp.{x}_proj.weight") for x in ("gate", "up")]
        state[f"{p}mlp.gate_up_proj.weight"] = torch.cat(gu).contiguous()
    return state


def _phi3_config(m: CausalLM) -> dict[str, Any]:
    c = m.cfg.to_hf()
    c.update(model_type="phi3", architectures=["Phi3ForCausalLM"], partial_rotary_factor=1.0,
             rope_scaling=None, original_max_position_embeddings=m.cfg.max_pos,
             resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0, pad_token_id=None)
    c.pop("attention_bias", None)
    c.pop("mlp_bias", None)
    return c


def save(s: Subject, out: Path, name: str, dtype: str) -> Path:
    """Write ``s`` as a Hugging Face directory (config, safetensors, tokenizer, card) with
    weights stored in ``dtype``; Phi-3 fused names when ``s.fused``."""
    out.mkdir(parents=True, exist_ok=True)
    m = CausalLM(s.model.cfg.with_(dtype=dtype))
    m.load_state_dict({k: v.float() for k, v in s.model.state_dict().items()})
    if s.fused:
        (out / "config.json").write_text(json.dumps(_phi3_config(m), indent=2) + "\n")
        save_file(_phi3_state(m), str(out / "model.safetensors"), metadata={"format": "pt"})
    else:
        save_model(m, out)
    s.enc.save(out)
    write_card(out, name, m.cfg)
    return out


def load_saved(s: Subject, out: Path) -> Subject:
    """Read back what :func:`save` wrote (splitting Phi-3's fused tensors) as a Subject, so
    the forward pass checks the stored file and not the in-memory model."""
    state = {k: v.double() for k, v in load_file(str(out / "model.safetensors")).items()}
    c = s.model.cfg
    qd, kd = c.heads * c.head_dim, c.kv_heads * c.head_dim
    for i in range(c.layers):
        p = f"model.layers.{i}."
        if f"{p}self_attn.qkv_proj.weight" in state:
            q, k, v = state.pop(f"{p}self_attn.qkv_proj.weight").split([qd, kd, kd])
            state.update({f"{p}self_attn.q_proj.weight": q, f"{p}self_attn.k_proj.weight": k,
                          f"{p}self_attn.v_proj.weight": v})
            g, u = state.pop(f"{p}mlp.gate_up_proj.weight").split([c.ffn, c.ffn])
            state.update({f"{p}mlp.gate_proj.weight": g, f"{p}mlp.up_proj.weight": u})
    m = CausalLM(c).double()
    m.load_state_dict(state)
    return replace(s, model=m)
