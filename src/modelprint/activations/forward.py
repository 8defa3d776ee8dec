"""A layer-by-layer numpy forward of decoder LLMs from modelprint's canonical role tensors.

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

numpy only (float32, BLAS products): no torch, so the check runs on every install and a
cold compare does not pay torch's import.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
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
    """The probe's residual stream through one model, advanced one layer per :meth:`step`.

    numpy float32 throughout (OpenBLAS products). It was torch until importing torch -- about
    1.6 s on this machine, more than the rest of a warm audit -- became the largest single cost
    of a cold ``compare``; the operations are a handful of products, a softmax and an
    elementwise activation, which numpy does as fast at the probe's size (128 tokens). The
    test suite compares the logits with an independent torch decoder
    (``tests/test_activations_forward.py``)."""

    def __init__(self, weights: WeightAccess, spec: DecoderSpec, ids: list[int],
                 bos: int | None = None, skip: int = 1) -> None:
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
        x = np.ascontiguousarray(rows[inverse], dtype=np.float32)
        self.x = x * np.float32(spec.embed_scale) if spec.embed_scale != 1.0 else x
        t = len(seq)
        self.rope = {scaled: self._rope(t, theta, scaled) for theta, scaled in
                     ((spec.rope_theta, True),
                      *(((spec.local_rope_theta, False),) if spec.local_rope_theta else ()))}
        pos = np.arange(t)
        causal = pos[None, :] <= pos[:, None]
        self.mask = {False: causal}
        if spec.sliding_window:
            self.mask[True] = causal & (pos[:, None] - pos[None, :] < spec.sliding_window)

    def _rope(self, t: int, theta: float, scaled: bool) -> tuple[np.ndarray, np.ndarray]:
        ang = np.outer(np.arange(t, dtype=np.float64), _inv_freq(self.spec, theta, scaled))
        ang = np.concatenate([ang, ang], axis=1)
        return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)

    def _opt(self, role: str, layer: int) -> np.ndarray | None:
        v = self.w.get(role, layer)
        return None if v is None else np.asarray(v, dtype=np.float32)

    def _get(self, role: str, layer: int) -> np.ndarray:
        v = self._opt(role, layer)
        if v is None:
            raise NoForward(f"layer {layer} has no {role} tensor")
        return v

    def _linear(self, h: np.ndarray, role: str, layer: int) -> np.ndarray:
        """``h @ W.T + b`` (torch's ``F.linear``), the bias only where one is stored."""
        y = h @ self._get(role, layer).T
        bias = self._opt(role + "_bias", layer)
        return y + bias if bias is not None else y

    def _norm(self, x: np.ndarray, gain: np.ndarray | None) -> np.ndarray:
        y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(self.spec.eps))
        return y * gain if gain is not None else y

    def _attention(self, layer: int, h: np.ndarray) -> np.ndarray:
        s = self.spec
        t = h.shape[0]
        q = self._linear(h, "attn.q", layer).reshape(t, s.heads, s.head_dim).transpose(1, 0, 2)
        k = self._linear(h, "attn.k", layer).reshape(t, s.kv_heads, s.head_dim).transpose(1, 0, 2)
        v = self._linear(h, "attn.v", layer).reshape(t, s.kv_heads, s.head_dim).transpose(1, 0, 2)
        qn, kn = self._opt("norm.q", layer), self._opt("norm.k", layer)
        if qn is not None:
            q = self._norm(q, qn)
        if kn is not None:
            k = self._norm(k, kn)
        local = layer in s.sliding_layers
        cos, sin = self.rope[not (local and s.local_rope_theta)]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        rep = s.heads // s.kv_heads
        k = np.repeat(k, rep, axis=0)
        v = np.repeat(v, rep, axis=0)
        scores = (q @ k.transpose(0, 2, 1)) * np.float32(s.attn_scale)
        if s.softcap:
            scores = np.tanh(scores / np.float32(s.softcap)) * np.float32(s.softcap)
        scores = np.where(self.mask[local and bool(s.sliding_window)], scores,
                          np.float32(-np.inf))
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        y = (scores / scores.sum(axis=-1, keepdims=True)) @ v
        y = y.transpose(1, 0, 2).reshape(t, s.heads * s.head_dim)
        return self._linear(y, "attn.o", layer)

    def _act(self, g: np.ndarray) -> np.ndarray:
        if self.spec.activation == "silu":   # g * sigmoid(g), sigmoid via tanh: no overflow
            return g * (np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * g)))
        if self.spec.activation == "gelu_tanh":
            c = np.float32(math.sqrt(2.0 / math.pi))
            inner = c * (g + np.float32(0.044715) * g * g * g)
            return np.float32(0.5) * g * (np.float32(1.0) + np.tanh(inner))
        from scipy.special import erf  # exact gelu: only families that ask for it

        return (np.float32(0.5) * g * (np.float32(1.0) + erf(g / np.float32(math.sqrt(2.0))))
                ).astype(np.float32)

    def step(self, layer: int, record: bool = True) -> LayerActivations | None:
        """Run layer ``layer`` on the residual stream; its MLP gate and up activations (probe
        positions only, float32) when ``record``."""
        with forward_threads(self.spec, int(self.x.shape[0])), \
                np.errstate(over="ignore", under="ignore"):
            x = self.x
            a = self._attention(layer, self._norm(x, self._opt("norm.attn", layer)))
            post = self._opt("norm.attn_post", layer)
            x = x + (self._norm(a, post) if post is not None else a)
            h = self._norm(x, self._opt("norm.mlp", layer))
            g = h @ self._get("mlp.gate", layer).T
            u = h @ self._get("mlp.up", layer).T
            m = self._act(g) * u
            out = m @ self._get("mlp.down", layer).T
            post = self._opt("norm.mlp_post", layer)
            self.x = np.asarray(x + (self._norm(out, post) if post is not None else out),
                                dtype=np.float32)
            if not record:
                return None
            return LayerActivations(np.ascontiguousarray(g[self.keep]),
                                    np.ascontiguousarray(u[self.keep]))

    def stream(self) -> np.ndarray:
        """The residual stream after the layers run so far (tokens x hidden, float32)."""
        return np.array(self.x, dtype=np.float32)

    def set_stream(self, x: np.ndarray) -> None:
        """Resume from a stored residual stream (:mod:`.cache`): the next :meth:`step` runs
        the layer after the one that produced ``x``."""
        if tuple(x.shape) != tuple(self.x.shape):
            raise NoForward(f"a stored residual stream has shape {x.shape}, expected "
                            f"{tuple(self.x.shape)}")
        self.x = np.array(x, dtype=np.float32)

    def logits(self) -> np.ndarray:
        """Final norm and LM head over every position (tests: compare with another forward)."""
        final = self.w.get("norm.final", None)
        head = self.w.get("lm_head", None)
        if head is None:
            head = self.w.get("embed", None)
        assert head is not None
        gain = None if final is None else np.asarray(final, dtype=np.float32)
        with forward_threads(self.spec, int(self.x.shape[0])):
            return self._norm(self.x, gain) @ np.asarray(head, dtype=np.float32).T


#: Below this many floating-point operations per layer (about ``24 * tokens * hidden^2``) a
#: forward runs on one BLAS thread: the probe is short (128 tokens), so a small model's
#: matrices are a few MFLOP each, where splitting them across threads costs more in
#: synchronisation than it saves -- and on a shared CI machine idle-spinning threads made
#: SmolLM2's check 3-4x slower (33 s instead of 9 s at load 7). A 7B-class layer (~5e10) uses
#: every core.
PARALLEL_FLOPS = 4e9


def parallel_layer(spec: DecoderSpec, tokens: int) -> bool:
    """Whether one layer of ``spec`` on ``tokens`` tokens is big enough for every BLAS
    thread (:data:`PARALLEL_FLOPS`)."""
    return 24 * tokens * spec.hidden ** 2 >= PARALLEL_FLOPS


@contextmanager
def forward_threads(spec: DecoderSpec, tokens: int) -> Iterator[int]:
    """The BLAS thread count for one layer of ``spec`` on ``tokens`` tokens (threadpoolctl,
    scoped: the caller's own setting -- the engine's single thread -- comes back after)."""
    from threadpoolctl import threadpool_limits

    n = (os.cpu_count() or 1) if parallel_layer(spec, tokens) else 1
    with threadpool_limits(limits=n, user_api="blas"):
        yield n


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
