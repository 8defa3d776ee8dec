"""The family registry and :func:`resolve`: a source's config -> ArchInfo + role slots.

The family is read from ``config.json``'s ``model_type`` (or, for GGUF sources, the
``general.architecture`` their synthesised config carries as ``model_type`` with
``_naming == "gguf"``). It is never guessed from tensor names: a model whose family is unknown
is an :class:`UnsupportedArchitectureError` listing what is supported, because a wrong guess
would silently compare the wrong tensors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ModelFileError, UnsupportedArchitectureError
from ..limits import ARCH_RANGES, MAX_HEADS, MAX_HIDDEN
from ..sources.base import ModelSource
from .base import ArchInfo, RoleSlot
from .gguf_names import GGUF_FAMILIES, gguf_rules
from .hf_classic import bert_rules, gpt2_rules, neox_rules
from .hf_decoder import decoder_rules
from .rules import Rule, Shape, map_tensors


@dataclass(frozen=True)
class Family:
    """One supported HF family: canonical name, rules, and whether norms are ``1 + w``."""

    name: str
    rules: Callable[[dict[str, Any]], list[Rule]]
    norm_offset: float = 0.0
    encoder: bool = False            # no LM head at all (BERT)


def _decoder(name: str, norm_offset: float = 0.0) -> Family:
    return Family(name, lambda cfg: decoder_rules(name, bool(cfg.get("sandwich_norm"))),
                  norm_offset)


#: HF ``model_type`` -> family. Gemma's RMSNorm computes ``x * (1 + w)`` in transformers.
HF_FAMILIES: dict[str, Family] = {
    "llama": _decoder("llama"),
    "mistral": _decoder("mistral"),
    "qwen2": _decoder("qwen2"),
    "qwen3": _decoder("qwen3"),
    "gemma": _decoder("gemma", 1.0),
    "gemma2": _decoder("gemma2", 1.0),
    "gemma3_text": _decoder("gemma3", 1.0),
    "gemma3": _decoder("gemma3", 1.0),          # multimodal wrapper; text_config is used
    "phi3": _decoder("phi3"),
    "mixtral": _decoder("mixtral"),
    "qwen2_moe": _decoder("qwen2_moe"),
    "qwen3_moe": _decoder("qwen3_moe"),
    "deepseek_v2": _decoder("deepseek_v2"),
    "deepseek_v3": _decoder("deepseek_v3"),
    "PanguProMoE": _decoder("pangu_pro_moe"),
    "gpt2": Family("gpt2", lambda cfg: gpt2_rules()),
    "bert": Family("bert", lambda cfg: bert_rules(), encoder=True),
    "gpt_neox": Family("gpt_neox", lambda cfg: neox_rules()),
}


def supported_families() -> list[str]:
    """Every accepted ``model_type`` and GGUF ``general.architecture``, for messages/docs."""
    hf = sorted(HF_FAMILIES, key=str.lower)
    return hf + [f"{a} (GGUF)" for a in sorted(GGUF_FAMILIES)]


def _unsupported(where: str, model_type: object, what: str) -> UnsupportedArchitectureError:
    shown = "missing" if model_type in (None, "") else repr(str(model_type)[:80])
    hf = ", ".join(sorted(HF_FAMILIES, key=str.lower))
    gg = ", ".join(sorted(GGUF_FAMILIES))
    return UnsupportedArchitectureError(
        where, f"unsupported architecture: {what} is {shown}; supported model_type values: "
        f"{hf}; GGUF general.architecture values: {gg}")


def _first(cfg: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = cfg.get(k)
        if v is not None:
            return v
    return None


#: Accepted range of each size a config declares (a size beyond it is an error before any
#: allocation: ``num_hidden_layers: 1e12`` must not build a trillion-entry layer set).
_BOUNDS: dict[str, tuple[int, int]] = {
    "hidden_size": ARCH_RANGES["hidden_size"], "num_attention_heads": ARCH_RANGES["num_heads"],
    "num_key_value_heads": ARCH_RANGES["num_kv_heads"], "head_dim": ARCH_RANGES["head_dim"],
    "qk_nope_head_dim": (0, MAX_HEADS), "qk_rope_head_dim": (0, MAX_HEADS),
    "intermediate_size": ARCH_RANGES["intermediate_size"],
    "num_hidden_layers": ARCH_RANGES["num_layers"],
    "num_nextn_predict_layers": ARCH_RANGES["num_layers"],
    "vocab_size": ARCH_RANGES["vocab_size"], "num_local_experts": ARCH_RANGES["num_experts"],
}


def _int(where: str, cfg: dict[str, Any], *keys: str, default: int | None = None) -> int:
    v = _first(cfg, *keys)
    if v is None:
        if default is not None:
            return default
        raise ModelFileError(where, f"config lacks {keys[0]}, needed to map the tensors")
    return _bounded(where, keys[0], v)


def _bounded(where: str, key: str, v: Any) -> int:
    """``v`` as an int within ``_BOUNDS[key]`` (an integral float such as 4096.0 is fine)."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ModelFileError(where, f"config field {key} is {str(v)[:40]!r}, not an integer")
    lo, hi = _BOUNDS.get(key, (0, MAX_HIDDEN))
    if not lo <= v <= hi:
        raise ModelFileError(where, f"config field {key} is {v}, outside {lo}..{hi}")
    return v


def _shape(where: str, family: str, cfg: dict[str, Any]) -> tuple[Shape, dict[str, Any]]:
    hidden = _int(where, cfg, "hidden_size", "n_embd", "d_model")
    heads = _int(where, cfg, "num_attention_heads", "n_head")
    kv = _int(where, cfg, "num_key_value_heads", "n_head_kv", default=heads)
    if family in ("gpt2", "bert", "gpt_neox"):
        kv = heads                       # no grouped-query attention in these families
    if family.startswith("deepseek"):
        head_dim = (_int(where, cfg, "qk_nope_head_dim", default=0)
                    + _int(where, cfg, "qk_rope_head_dim", default=0)) or max(hidden // heads, 1)
    else:
        head_dim = _int(where, cfg, "head_dim", default=max(hidden // heads, 1))
    inter = _first(cfg, "intermediate_size", "n_inner", "ffn_dim")
    if inter is None and family == "gpt2":
        inter = 4 * hidden
    vocab = _first(cfg, "vocab_size")
    experts = _first(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    facts = {
        "num_layers": _int(where, cfg, "num_hidden_layers", "n_layer", "num_layers"),
        "vocab_size": None if vocab is None else _bounded(where, "vocab_size", vocab),
        "num_experts": None if experts is None else _bounded(where, "num_local_experts",
                                                              experts),
    }
    shape = Shape(where, family, hidden, heads, kv, head_dim,
                  _bounded(where, "intermediate_size", inter) if inter is not None else None)
    return shape, facts


def resolve(source: ModelSource) -> tuple[ArchInfo, list[RoleSlot]]:
    """Map ``source``'s tensors onto roles. Raises :class:`UnsupportedArchitectureError` for an
    unknown family and :class:`ModelFileError` when config and tensors disagree."""
    where = source.reference
    cfg = dict(source.config() or {})
    model_type = cfg.get("model_type")
    gguf = cfg.get("_naming") == "gguf"
    if gguf:
        if not isinstance(model_type, str) or model_type not in GGUF_FAMILIES:
            raise _unsupported(where, model_type, "GGUF general.architecture")
        name = GGUF_FAMILIES[model_type]
        rules = gguf_rules(name)
        norm_offset, encoder = 0.0, name == "bert"
    else:
        if not isinstance(model_type, str) or model_type not in HF_FAMILIES:
            raise _unsupported(where, model_type, "config.json model_type")
        fam = HF_FAMILIES[model_type]
        if isinstance(cfg.get("text_config"), dict):   # multimodal wrapper: text tower only
            cfg = {**cfg, **cfg["text_config"]}
        name, rules = fam.name, fam.rules(cfg)
        norm_offset, encoder = fam.norm_offset, fam.encoder
    shape, facts = _shape(where, name, cfg)
    tensors = source.tensors()
    slots = map_tensors(tensors.values(), rules, shape)
    if not slots:
        raise ModelFileError(where, f"no tensor matches the {name} naming; is model_type "
                             f"{model_type!r} right for these weights?")
    roles = {s.role for s in slots}
    dtype_bytes: Counter[str] = Counter()
    for tname in {s.tensor for s in slots}:
        dtype_bytes[tensors[tname].dtype] += tensors[tname].nbytes
    info = ArchInfo(
        family=name,
        num_layers=facts["num_layers"],
        hidden_size=shape.hidden,
        num_heads=shape.heads,
        num_kv_heads=shape.kv_heads,
        head_dim=shape.head_dim,
        intermediate_size=shape.intermediate,
        vocab_size=facts["vocab_size"],
        num_experts=facts["num_experts"] or None,
        norm_offset=norm_offset,
        tied_embeddings=(not encoder and "embed" in roles and "lm_head" not in roles),
        dtype=dtype_bytes.most_common(1)[0][0] if dtype_bytes else "",
        model_type=str(model_type),
    )
    return info, _check_layers(where, info, slots, _int(where, cfg, "num_nextn_predict_layers",
                                                         default=0))


def _check_layers(where: str, info: ArchInfo, slots: list[RoleSlot],
                  nextn: int) -> list[RoleSlot]:
    """Every layer of the config must have tensors and none may lie beyond it: a mismatch means
    the config belongs to another model, or the name map does not fit these weights.
    DeepSeek-V3's multi-token-prediction layers (``num_nextn_predict_layers``, stored as layers
    ``L..L+n-1``) are not part of the decoder stack and are dropped."""
    n = info.num_layers
    slots = [s for s in slots if s.layer is None or s.layer < n or s.layer >= n + nextn]
    layers = {s.layer for s in slots if s.layer is not None}
    if layers and max(layers) >= n:
        raise ModelFileError(where, f"weights have layer {max(layers)} but the config says "
                             f"{n} layers")
    missing = sorted(set(range(n)) - layers)
    if missing:
        raise ModelFileError(where, f"no {info.family} tensors found for layer {missing[0]} "
                             f"({len(missing)} of {n} layers missing); is model_type "
                             f"{info.model_type!r} right for these weights?")
    return slots
