"""A layer-by-layer torch forward of decoder LLMs from modelprint's canonical role tensors.

Why not ``transformers``: modelprint reads weights from any source it supports (sharded
safetensors, GGUF with quantised blocks, hub folders) through
:class:`~modelprint.checks.base.WeightAccess`, already in the Hugging Face layout with
llama.cpp's q/k permutation undone and Gemma's ``1 + w`` norms turned into effective gains. A
forward over those role tensors works for all of them alike and never loads a whole model:
:class:`DecoderRun` keeps only the residual stream of the probe tokens (tokens x hidden) and
reads one layer's tensors at a time, so memory is O(one layer + tokens x hidden) whatever the
model's size.

What is implemented, after the Hugging Face modelling code of each family:

* llama, mistral, qwen2, qwen3: RMSNorm ``x * rsqrt(mean(x^2) + eps) * g``; rotate-half RoPE
  on the HF q/k layout (``rope_theta``; ``linear`` and ``llama3`` rope scaling from
  config.json); grouped-query attention (kv head ``h`` serves consecutive query heads);
  q/k/v/o biases when stored (qwen2); per-head q/k norms when stored (qwen3); SwiGLU.
* gemma, gemma2, gemma3: the embedding scaled by ``sqrt(hidden)``; GeGLU with the tanh
  approximation of gelu; the post-attention and post-MLP norms when stored (gemma2/3);
  q/k norms (gemma3); attention scaled by ``query_pre_attn_scalar`` (config.json; the head dim
  when absent, as for GGUF files); gemma2's attention-logit soft-capping; gemma3's local
  layers (every layer but each sixth, or config ``layer_types``) with their own RoPE base
  (``rope_local_base_freq``, 10000) and sliding window.

Sliding windows are applied as a mask; probes are far shorter than any window in use (512 to
4096 tokens), so they rarely matter. Rope scaling that GGUF files carry as a tensor (Llama 3's
``rope_freqs``) or scaling types other than ``linear``/``llama3`` are approximated by plain
RoPE; :attr:`DecoderSpec.approximations` says so. Final logit soft-capping and the LM head are
not needed by the activation checks (:meth:`DecoderRun.logits` exists for the tests).

torch is imported lazily (only when a forward runs), so modelprint without the
``activations`` extra never pays for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from modelprint.checks.base import WeightAccess

#: Families with a forward here (canonical family names of :mod:`modelprint.arch`).
LLAMA_LIKE = frozenset({"llama", "mistral", "qwen2", "qwen3"})
GEMMA_LIKE = frozenset({"gemma", "gemma2", "gemma3"})
SUPPORTED = LLAMA_LIKE | GEMMA_LIKE

_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh",
                "gelu_new": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu": "gelu"}


class NoForward(Exception):
    """The model cannot be run here; the message says why (shown as "not applicable")."""


@dataclass(frozen=True)
class DecoderSpec:
    """What a forward needs beyond the role tensors, from config.json or GGUF metadata."""

    family: str
    num_layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    eps: float
    rope_theta: float
    activation: str                     # silu | gelu_tanh | gelu
    attn_scale: float
    embed_scale: float = 1.0
    rope_scaling: dict[str, Any] | None = None
    local_rope_theta: float | None = None
    sliding_window: int | None = None
    sliding_layers: frozenset[int] = frozenset()
    softcap: float | None = None
    approximations: tuple[str, ...] = field(default_factory=tuple)


def _source(weights: Any) -> Any:
    return getattr(weights, "source", None)


def config_of(weights: Any) -> dict[str, Any] | None:
    """The weights' HF-style config (a multimodal wrapper's text tower merged in), or None."""
    src = _source(weights)
    cfg = getattr(src, "config", None)
    if not callable(cfg):
        return None
    out = dict(cfg() or {})
    if isinstance(out.get("text_config"), dict):
        out = {**out, **out["text_config"]}
    return out


def metadata_of(weights: Any) -> dict[str, Any]:
    src = _source(weights)
    get = getattr(src, "metadata", None)
    return dict(get() or {}) if callable(get) else {}


def vocabulary_of(weights: Any) -> list[str] | None:
    """Token strings by id from the weights' source, or None."""
    for get in (getattr(weights, "vocabulary", None), getattr(_source(weights), "vocabulary",
                                                              None)):
        if callable(get):
            vocab = get()
            return list(vocab) if vocab else None
    return None


def bos_id(weights: Any) -> int | None:
    """The id of the beginning-of-sequence token when the model's tokenizer adds one."""
    cfg = config_of(weights) or {}
    if cfg.get("_naming") == "gguf":
        md = metadata_of(weights)
        bos = md.get("tokenizer.ggml.bos_token_id")
        return int(bos) if isinstance(bos, int) and md.get("tokenizer.ggml.add_bos_token") \
            else None
    bos = cfg.get("bos_token_id")
    return int(bos) if isinstance(bos, int) and not isinstance(bos, bool) else None


def _num(cfg: dict[str, Any], key: str, default: float | None) -> float | None:
    v = cfg.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def decoder_spec(weights: Any) -> DecoderSpec:
    """The forward's parameters for ``weights``; raises :class:`NoForward` with the reason."""
    arch = getattr(weights, "arch", None)
    cfg = config_of(weights)
    if arch is None or cfg is None:
        raise NoForward("the weights carry no architecture config")
    fam = arch.family
    if fam not in SUPPORTED:
        raise NoForward(f"no forward implementation for the {fam} family (implemented: "
                        f"{', '.join(sorted(SUPPORTED))})")
    if arch.num_experts:
        raise NoForward("mixture-of-experts layers have no forward implementation here")
    gguf = cfg.get("_naming") == "gguf"
    md = metadata_of(weights) if gguf else {}
    gemma = fam in GEMMA_LIKE
    approx: list[str] = []
    act_name = (cfg.get("hidden_activation") or "gelu_pytorch_tanh") if gemma else \
        (cfg.get("hidden_act") or "silu")
    if act_name not in _ACTIVATIONS:
        raise NoForward(f"MLP activation {act_name!r} has no implementation here")
    eps = _num(cfg, "rms_norm_eps", None) or _num(cfg, "layer_norm_eps", None) or 1e-6
    theta = _num(cfg, "rope_theta", 10000.0) or 10000.0
    scaling = cfg.get("rope_scaling") if isinstance(cfg.get("rope_scaling"), dict) else None
    if gguf:
        kind, factor = md.get(f"{cfg.get('model_type')}.rope.scaling.type"), \
            md.get(f"{cfg.get('model_type')}.rope.scaling.factor")
        scaling = ({"rope_type": "linear", "factor": float(factor)}
                   if kind == "linear" and isinstance(factor, (int, float)) else None)
        if fam == "llama" and "rope_freqs.weight" in (_source(weights).tensors() or {}):
            approx.append("GGUF rope_freqs (Llama 3 rope scaling) approximated by plain RoPE")
    if scaling is not None:
        kind = scaling.get("rope_type") or scaling.get("type")
        if kind not in ("linear", "llama3", "default"):
            approx.append(f"rope scaling {kind!r} approximated by plain RoPE")
            scaling = None
    head_dim = arch.head_dim
    scalar = _num(cfg, "query_pre_attn_scalar", None) if gemma else None
    window, sliding = _windows(fam, cfg, md, arch.num_layers)
    softcap = None
    if fam == "gemma2":
        softcap = _num(cfg, "attn_logit_softcapping", None) if not gguf else \
            _num(md, "gemma2.attn_logit_softcapping", 50.0)
    return DecoderSpec(
        family=fam, num_layers=arch.num_layers, hidden=arch.hidden_size, heads=arch.num_heads,
        kv_heads=arch.num_kv_heads, head_dim=head_dim, eps=float(eps), rope_theta=float(theta),
        activation=_ACTIVATIONS[act_name],
        attn_scale=1.0 / math.sqrt(scalar if scalar else head_dim),
        embed_scale=math.sqrt(arch.hidden_size) if gemma else 1.0,
        rope_scaling=scaling,
        local_rope_theta=(_num(cfg, "rope_local_base_freq", 10000.0) if fam == "gemma3"
                          else None),
        sliding_window=window, sliding_layers=sliding, softcap=softcap,
        approximations=tuple(approx),
    )


def _windows(fam: str, cfg: dict[str, Any], md: dict[str, Any], layers: int
             ) -> tuple[int | None, frozenset[int]]:
    """The sliding window and the layers that use it (HF conventions per family)."""
    key = f"{cfg.get('model_type')}.attention.sliding_window"
    window = _num(cfg, "sliding_window", None) or _num(md, key, None)
    if fam == "qwen2" and not cfg.get("use_sliding_window"):
        window = None
    if not window:
        return None, frozenset()
    if fam == "gemma2":
        return int(window), frozenset(i for i in range(layers) if i % 2 == 0)
    if fam == "gemma3":
        types = cfg.get("layer_types")
        if isinstance(types, list) and len(types) == layers:
            return int(window), frozenset(i for i, t in enumerate(types)
                                          if t == "sliding_attention")
        pattern = int(_num(cfg, "sliding_window_pattern", 6) or 6)
        return int(window), frozenset(i for i in range(layers) if (i + 1) % pattern)
    return int(window), frozenset(range(layers))


def _inv_freq(spec: DecoderSpec, theta: float, scaled: bool) -> np.ndarray:
    d = spec.head_dim
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    s = spec.rope_scaling if scaled else None
    if not s:
        return inv
    kind = s.get("rope_type") or s.get("type")
    factor = float(s.get("factor", 1.0))
    if kind == "linear":
        return inv / factor
    if kind == "llama3":          # transformers' _compute_llama3_parameters
        low, high = float(s.get("low_freq_factor", 1.0)), float(s.get("high_freq_factor", 4.0))
        old = float(s.get("original_max_position_embeddings", 8192))
        wavelen = 2 * math.pi / inv
        out = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        mid = (wavelen <= old / low) & (wavelen >= old / high)
        return np.where(mid, (1 - smooth) * out / factor + smooth * out, out)
    return inv


@dataclass
class LayerActivations:
    """One MLP's pre-activation outputs on the probe tokens, (tokens x hidden units) each."""

    gate: np.ndarray
    up: np.ndarray


class DecoderRun:
    """The probe's residual stream through one model, advanced one layer per :meth:`step`."""

    def __init__(self, weights: WeightAccess, spec: DecoderSpec, ids: list[int],
                 bos: int | None = None, skip: int = 1) -> None:
        import torch

        self.torch = torch
        self.w = weights
        self.spec = spec
        lead = [bos] if bos is not None else []
        seq = lead + list(ids)
        #: positions whose activations are handed out: the probe tokens after the first
        #: ``skip`` of them, the same positions in every model whether or not it reads a BOS
        #: first (the first position is an attention sink whose activations are orders of
        #: magnitude larger than the rest and would dominate every unit's vector)
        self.keep = slice(len(lead) + skip, None)
        uniq, inverse = np.unique(np.asarray(seq, dtype=np.int64), return_inverse=True)
        rows = weights.rows("embed", None, uniq)
        if rows is None:
            raise NoForward("the model has no embedding matrix")
        x = torch.from_numpy(np.ascontiguousarray(rows[inverse], dtype=np.float32))
        self.x = x * spec.embed_scale if spec.embed_scale != 1.0 else x
        t = len(seq)
        self.rope = {scaled: self._rope(t, theta, scaled) for theta, scaled in
                     ((spec.rope_theta, True),
                      *(((spec.local_rope_theta, False),) if spec.local_rope_theta else ()))}
        pos = torch.arange(t)
        causal = pos[None, :] <= pos[:, None]
        self.mask = {False: causal}
        if spec.sliding_window:
            self.mask[True] = causal & (pos[:, None] - pos[None, :] < spec.sliding_window)

    def _rope(self, t: int, theta: float, scaled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ang = np.outer(np.arange(t, dtype=np.float64), _inv_freq(self.spec, theta, scaled))
        ang = np.concatenate([ang, ang], axis=1)
        torch = self.torch
        return (torch.from_numpy(np.cos(ang).astype(np.float32)),
                torch.from_numpy(np.sin(ang).astype(np.float32)))

    def _opt(self, role: str, layer: int) -> torch.Tensor | None:
        v = self.w.get(role, layer)
        return None if v is None else self.torch.from_numpy(np.require(v, np.float32, ["C", "W"]))

    def _get(self, role: str, layer: int) -> torch.Tensor:
        v = self._opt(role, layer)
        if v is None:
            raise NoForward(f"layer {layer} has no {role} tensor")
        return v

    def _norm(self, x: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
        y = x * self.torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.spec.eps)
        return y * gain if gain is not None else y

    def _attention(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        torch, s = self.torch, self.spec
        F = torch.nn.functional
        t = h.shape[0]
        q = F.linear(h, self._get("attn.q", layer), self._opt("attn.q_bias", layer))
        k = F.linear(h, self._get("attn.k", layer), self._opt("attn.k_bias", layer))
        v = F.linear(h, self._get("attn.v", layer), self._opt("attn.v_bias", layer))
        q = q.view(t, s.heads, s.head_dim).transpose(0, 1)
        k = k.view(t, s.kv_heads, s.head_dim).transpose(0, 1)
        v = v.view(t, s.kv_heads, s.head_dim).transpose(0, 1)
        qn, kn = self._opt("norm.q", layer), self._opt("norm.k", layer)
        if qn is not None:
            q = self._norm(q, qn)
        if kn is not None:
            k = self._norm(k, kn)
        local = layer in s.sliding_layers
        cos, sin = self.rope[not (local and s.local_rope_theta)]
        q = q * cos + _rotate_half(torch, q) * sin
        k = k * cos + _rotate_half(torch, k) * sin
        rep = s.heads // s.kv_heads
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        scores = (q @ k.transpose(1, 2)) * s.attn_scale
        if s.softcap:
            scores = torch.tanh(scores / s.softcap) * s.softcap
        scores = scores.masked_fill(~self.mask[local and bool(s.sliding_window)], float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        y = y.transpose(0, 1).reshape(t, s.heads * s.head_dim)
        return F.linear(y, self._get("attn.o", layer), self._opt("attn.o_bias", layer))

    def _act(self, g: torch.Tensor) -> torch.Tensor:
        F = self.torch.nn.functional
        if self.spec.activation == "silu":
            return F.silu(g)
        return F.gelu(g, approximate="tanh" if self.spec.activation == "gelu_tanh" else "none")

    def step(self, layer: int, record: bool = True) -> LayerActivations | None:
        """Run layer ``layer`` on the residual stream; its MLP gate and up activations (probe
        positions only, numpy float32) when ``record``."""
        torch = self.torch
        with torch.no_grad(), forward_threads(torch, self.spec, int(self.x.shape[0])):
            x = self.x
            a = self._attention(layer, self._norm(x, self._opt("norm.attn", layer)))
            post = self._opt("norm.attn_post", layer)
            x = x + (self._norm(a, post) if post is not None else a)
            h = self._norm(x, self._opt("norm.mlp", layer))
            gate_w = self._get("mlp.gate", layer)
            up_w = self._get("mlp.up", layer)
            g = h @ gate_w.T
            u = h @ up_w.T
            del gate_w, up_w
            m = self._act(g) * u
            out = m @ self._get("mlp.down", layer).T
            post = self._opt("norm.mlp_post", layer)
            self.x = x + (self._norm(out, post) if post is not None else out)
            if not record:
                return None
            return LayerActivations(g[self.keep].numpy(), u[self.keep].numpy())

    def stream(self) -> np.ndarray:
        """The residual stream after the layers run so far (tokens x hidden, float32)."""
        return np.asarray(self.x.numpy(), dtype=np.float32)

    def set_stream(self, x: np.ndarray) -> None:
        """Resume from a stored residual stream (:mod:`.cache`): the next :meth:`step` runs
        the layer after the one that produced ``x``."""
        if tuple(x.shape) != tuple(self.x.shape):
            raise NoForward(f"a stored residual stream has shape {x.shape}, expected "
                            f"{tuple(self.x.shape)}")
        self.x = self.torch.from_numpy(np.array(x, dtype=np.float32))

    def logits(self) -> np.ndarray:
        """Final norm and LM head over every position (tests: compare with another forward)."""
        final = self.w.get("norm.final", None)
        head = self.w.get("lm_head", None)
        if head is None:
            head = self.w.get("embed", None)
        assert head is not None
        with self.torch.no_grad():
            gain = None if final is None else self.torch.from_numpy(np.require(final, np.float32,
                                                                               ["C", "W"]))
            x = self._norm(self.x, gain)
            return (x @ self.torch.from_numpy(np.require(head, np.float32, ["C", "W"])).T).numpy()


#: Below this many floating-point operations per layer (about ``24 * tokens * hidden^2``) a
#: forward runs on one thread: the probe is short (128 tokens), so a small model's matrices
#: are a few MFLOP each, where splitting them across threads costs more in synchronisation
#: than it saves -- and on a shared CI machine idle-spinning OpenMP threads made SmolLM2's
#: check 3-4x slower (33 s instead of 9 s at load 7). A 7B-class layer (~5e10) uses them all.
PARALLEL_FLOPS = 4e9


@contextmanager
def forward_threads(torch: Any, spec: DecoderSpec, tokens: int) -> Iterator[int]:
    """torch's intra-op thread count for one layer of ``spec`` on ``tokens`` tokens
    (restored afterwards, so a caller's own torch setting is untouched)."""
    before = torch.get_num_threads()
    n = before if 24 * tokens * spec.hidden ** 2 >= PARALLEL_FLOPS else 1
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def _rotate_half(torch: Any, x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)
