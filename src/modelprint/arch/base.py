"""Architecture facts and the mapping of stored tensors onto canonical roles.

The arch layer knows names and layouts; it does not compute statistics. It turns a
:class:`~modelprint.sources.base.ModelSource` into an :class:`ArchInfo` plus a list of
:class:`RoleSlot` -- "layer 3's attn.q is rows 0..767 of the transposed tensor
h.3.attn.c_attn.weight" --
and reads a slot's values block by block in the Hugging Face layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArchInfo:
    """Facts about a model's shape, from config.json or GGUF metadata."""

    family: str                     # canonical family name, e.g. "llama", "qwen2", "gpt2"
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int | None = None
    vocab_size: int | None = None
    num_experts: int | None = None
    #: Norms are applied as (norm_offset + w): 1.0 for Gemma, 0.0 elsewhere.
    norm_offset: float = 0.0
    tied_embeddings: bool = False
    #: Dominant stored dtype of the weights (e.g. "BF16", "Q4_1").
    dtype: str = ""
    model_type: str = ""            # as written in config / general.architecture

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RoleSlot:
    """Where one role of one layer (and expert) lives in the stored tensors.

    ``row_ranges`` select rows of the tensor *in HF layout* (after ``transpose``), as a tuple
    of half-open ``(start, stop)`` ranges concatenated in order; ``None`` means all rows.
    Fused QKV is expressed this way: Phi-3 ``qkv_proj`` q = ((0, d),); NeoX's per-head
    interleave gives one range per head.
    """

    role: str
    layer: int | None               # None for model-level roles (embed, lm_head, final norm)
    tensor: str                     # stored tensor name
    expert: int | None = None
    transpose: bool = False         # stored (in, out), e.g. GPT-2 Conv1D
    row_ranges: tuple[tuple[int, int], ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
