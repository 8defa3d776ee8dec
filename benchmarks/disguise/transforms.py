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
*composition* applied after the disguise (see :func:`compose`).
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
from benchmarks.lineage.ggufio import read_gguf, write_gguf
from benchmarks.lineage.ops import write_card
from benchmarks.lineage.tiny_lm import CausalLM, save_model
from benchmarks.lineage.train import train
from safetensors.torch import load_file, save_file


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


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).double()


# -- orthogonal matrices ------------------------------------------------------------------

def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """Haar-random orthogonal matrix: QR of a seeded Gaussian, columns sign-fixed by diag(R)
    (without the fix QR's sign convention biases the distribution)."""
    q, r = np.linalg.qr(_rng(seed).normal(size=(d, d)))
    return np.asarray(q * np.sign(np.diag(r)))


def _paley12() -> np.ndarray:
    """Hadamard matrix of order 12 by Paley's first construction (q = 11 = 3 mod 4)."""
    q = 11
    residues = {(x * x) % q for x in range(1, q)}
    chi = np.array([0] + [1 if x in residues else -1 for x in range(1, q)])
    jac = np.array([[chi[(j - i) % q] for j in range(q)] for i in range(q)])
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = jac
    return np.eye(q + 1, dtype=np.int64) + s


def hadamard(n: int) -> np.ndarray | None:
    """A +-1 Hadamard matrix of order n (H H^T = n I) for n = 2^k or 12^j 2^k (Sylvester,
    Kronecker with Paley's H_12 -- SmolLM2's 576 = 12 * 12 * 4), else None."""
    if n == 1:
        return np.ones((1, 1), dtype=np.int64)
    if n % 2 == 0 and (n & (n - 1)) == 0:
        h = hadamard(n // 2)
        assert h is not None
        return np.block([[h, h], [h, -h]])
    if n % 12 == 0:
        rest = hadamard(n // 12)
        return None if rest is None else np.kron(_paley12(), rest)
    return None


def randomised_hadamard(d: int, seed: int) -> tuple[np.ndarray, str]:
    """QuaRot's rotation ``H diag(s) / sqrt(d)`` with random signs ``s``.

    When no Hadamard matrix of order d is built here (d not 2^k 12^j) the rotation is
    block-diagonal with Hadamard blocks of the largest order dividing d that is built --
    still orthogonal, but it mixes dimensions only within a block (QuaRot uses Kronecker
    products with a table of known orders for such widths). Returns the matrix and a label.
    """
    h = hadamard(d)
    label = f"H_{d}"
    if h is None:
        b = max(k for k in range(1, d + 1) if d % k == 0 and hadamard(k) is not None)
        h = np.kron(np.eye(d // b), hadamard(b))
        label = f"block-diagonal {d // b} x H_{b}"
    signs = _rng(seed).choice([-1.0, 1.0], size=d)
    return h.astype(np.float64) * signs[None, :] / np.sqrt(float(h[0] @ h[0])), label


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
    qt = _t(q)
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
    return rotate(s, random_orthogonal(s.model.cfg.hidden, seed), "random orthogonal")


def rotate_hadamard(s: Subject, seed: int) -> Subject:
    q, label = randomised_hadamard(s.model.cfg.hidden, seed)
    return rotate(s, q, f"randomised Hadamard, {label}")


@torch.no_grad()
def permute_units(s: Subject, seed: int) -> Subject:
    """Relabel the SwiGLU hidden units of every layer (gate/up rows, down columns)."""
    m = _clone(s.model)
    rng = _rng(seed)
    for layer in _layers(m):
        f = layer.mlp
        p = torch.from_numpy(rng.permutation(m.cfg.ffn))
        f.gate_proj.weight.copy_(f.gate_proj.weight[p])
        f.up_proj.weight.copy_(f.up_proj.weight[p])
        f.down_proj.weight.copy_(f.down_proj.weight[:, p])
    return s.derive(m, "permute_units")


def _head_rows(heads: np.ndarray, hd: int) -> torch.Tensor:
    return torch.from_numpy((heads[:, None] * hd + np.arange(hd)).ravel())


@torch.no_grad()
def permute_heads(s: Subject, seed: int) -> Subject:
    """Relabel KV groups (each moving with its query heads) and the query heads within each
    group: GQA pairs query head h with kv head h // rep, so only these relabellings keep the
    function."""
    m = _clone(s.model)
    c = m.cfg
    rng, rep, hd = _rng(seed), c.heads // c.kv_heads, c.head_dim
    for layer in _layers(m):
        a = layer.self_attn
        groups = rng.permutation(c.kv_heads)
        qrows = _head_rows(np.concatenate([g * rep + rng.permutation(rep) for g in groups]), hd)
        krows = _head_rows(groups, hd)
        for p, rows in ((a.q_proj, qrows), (a.k_proj, krows), (a.v_proj, krows)):
            p.weight.copy_(p.weight[rows])
            if p.bias is not None:
                p.bias.copy_(p.bias[rows])
        a.o_proj.weight.copy_(a.o_proj.weight[:, qrows])
    return s.derive(m, "permute_heads")


def _lognormal(rng: np.random.Generator, n: int, sigma: float) -> torch.Tensor:
    return _t(np.exp(rng.normal(0.0, sigma, size=n)))


@torch.no_grad()
def scale_qk(s: Subject, seed: int, sigma: float = 0.7) -> Subject:
    """q * s, k / s per KV group (one s for a kv head and every query head reading it): the
    scores q.k are unchanged, and a scalar commutes with RoPE's per-pair rotations."""
    m = _clone(s.model)
    c = m.cfg
    rng, rep, hd = _rng(seed), c.heads // c.kv_heads, c.head_dim
    for layer in _layers(m):
        a = layer.self_attn
        sg = _lognormal(rng, c.kv_heads, sigma)
        qs = sg.repeat_interleave(rep * hd)
        ks = sg.repeat_interleave(hd)
        for p, scale in ((a.q_proj, qs), (a.k_proj, 1.0 / ks)):
            p.weight.mul_(scale[:, None])
            if p.bias is not None:
                p.bias.mul_(scale)
    return s.derive(m, "scale_qk")


def _well_conditioned(rng: np.random.Generator, n: int) -> np.ndarray:
    """U diag(exp(N(0, 0.5))) V with Haar U, V: invertible, condition number ~ e^2."""
    u = random_orthogonal(n, int(rng.integers(2**31)))
    v = random_orthogonal(n, int(rng.integers(2**31)))
    return np.asarray(u * np.exp(rng.normal(0.0, 0.5, size=n))[None, :] @ v)


@torch.no_grad()
def vo_maps(s: Subject, seed: int) -> Subject:
    """V_g -> M_g V_g (and its bias), O_h -> O_h M_g^-1 for every query head h of group g:
    attention mixes value vectors linearly, so any invertible M per kv head cancels."""
    m = _clone(s.model)
    c = m.cfg
    rng, rep, hd = _rng(seed), c.heads // c.kv_heads, c.head_dim
    for layer in _layers(m):
        a = layer.self_attn
        for g in range(c.kv_heads):
            mg = _well_conditioned(rng, hd)
            rows = slice(g * hd, (g + 1) * hd)
            a.v_proj.weight[rows] = _t(mg) @ a.v_proj.weight[rows]
            if a.v_proj.bias is not None:
                a.v_proj.bias[rows] = _t(mg) @ a.v_proj.bias[rows]
            inv = _t(np.linalg.inv(mg))
            for h in range(g * rep, (g + 1) * rep):
                cols = slice(h * hd, (h + 1) * hd)
                a.o_proj.weight[:, cols] = a.o_proj.weight[:, cols] @ inv
    return s.derive(m, "vo_maps")


@torch.no_grad()
def scale_updown(s: Subject, seed: int, sigma: float = 0.7) -> Subject:
    """up * s, down / s per hidden unit (s > 0): silu(gate) * up is linear in up."""
    m = _clone(s.model)
    rng = _rng(seed)
    for layer in _layers(m):
        f = layer.mlp
        sc = _lognormal(rng, m.cfg.ffn, sigma)
        f.up_proj.weight.mul_(sc[:, None])
        f.down_proj.weight.div_(sc[None, :])
    return s.derive(m, "scale_updown")


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
        "permute_units": permute_units,
        "permute_heads": permute_heads,
        "scale_qk": scale_qk,
        "vo_maps": vo_maps,
        "scale_updown": scale_updown,
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


# -- compositions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    """What a composition costs on one base: fine-tune steps/batch/lr, layers to drop, MoE."""

    ft_steps: int
    ft_batch: int
    ft_lr: float
    drop: tuple[int, ...]
    experts: int
    moe_steps: int
    gguf_qtype: str


def finetune(s: Subject, text: str, b: Budget, seed: int, steps: int | None = None
             ) -> tuple[Subject, dict[str, Any]]:
    """A short real fine-tune (AdamW, train.py) on ``text`` tokenised by the subject's own
    tokenizer (so a relabelled vocabulary trains on its own ids)."""
    m = copy.deepcopy(s.model).float()
    stream = np.asarray(s.enc.encode(text), dtype=np.int32)
    rec = train(m, stream[:-4096], steps=b.ft_steps if steps is None else steps, lr=b.ft_lr,
                seed=seed, seq=128, batch=b.ft_batch,
                eval_windows=stream[-4096:][: 8 * 129].reshape(8, 129).astype(np.int64))
    return s.derive(m.double(), "finetune"), rec


def gguf_round_trip(s: Subject, path: Path, qtype: str, name: str
                    ) -> tuple[Subject, dict[str, Any]]:
    """Write ``s`` as a quantised GGUF (:func:`ggufio.write_gguf`) and read it back; the GGUF
    file is the candidate unless the subject is stored fused (then the dequantised weights are
    saved in Phi-3 layout by the caller)."""
    state = {k: v.float().numpy() for k, v in s.model.hf_state().items()}
    used = write_gguf(s.model.cfg, state, s.enc, path, qtype, name)
    _, back, _ = read_gguf(path)
    num = sum(float(((back[k] - v) ** 2).sum()) for k, v in state.items() if v.ndim == 2)
    den = sum(float((v ** 2).sum()) for v in state.values() if v.ndim == 2)
    m = CausalLM(s.model.cfg).double()
    m.load_state_dict({k: torch.from_numpy(v).double() for k, v in back.items()})
    return s.derive(m, f"gguf_{qtype.lower()}"), {
        "tensor_types": used, "relative_rms_error": round((num / den) ** 0.5, 5)}


def layer_drop(s: Subject, b: Budget) -> Subject:
    return s.derive(derive.layer_drop(s.model, list(b.drop)), f"layer_drop{list(b.drop)}")


def moe_upcycle(s: Subject, b: Budget, text: str, seed: int) -> tuple[Subject, dict[str, Any]]:
    """Sparse upcycling (:func:`derive.moe_upcycle`: experts copied from the dense FFN, a new
    router), then ``moe_steps`` of training so the experts drift apart."""
    m = derive.moe_upcycle(copy.deepcopy(s.model).float(), b.experts, 2, seed)
    up = s.derive(m, f"moe_upcycle({b.experts} experts)")
    if not b.moe_steps:
        return up, {"steps": 0}
    out, rec = finetune(up, text, b, seed, steps=b.moe_steps)
    return out, rec
