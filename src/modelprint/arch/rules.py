"""A small rule engine: stored tensor name (regex) -> one or more :class:`RoleSlot`.

Families are described as lists of :class:`Rule`. A rule's pattern must match the whole
stored name; its named groups ``layer`` and ``expert`` become the slot's indices. A rule maps
to one role, or -- for fused tensors -- a ``split`` that returns several ``(role, row_ranges)``
computed from the config's head counts. Names no rule matches (rotary caches, attention-mask
buffers such as GPT-2's ``attn.bias``, vision towers...) are ignored, as are non-float tensors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import ModelFileError
from ..sources.base import TensorInfo
from .base import RoleSlot

Ranges = tuple[tuple[int, int], ...]

#: Stored dtypes that are not weights (masks, position ids, counters).
NON_FLOAT_PREFIXES = ("BOOL", "I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64")


@dataclass(frozen=True)
class Shape:
    """The config facts fused-tensor splits need. ``where`` names the model for errors."""

    where: str
    family: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int | None = None


SplitFn = Callable[[Shape, TensorInfo, int], list[tuple[str, Ranges]]]


@dataclass(frozen=True)
class Rule:
    """``pattern`` -> ``role`` (or ``split``). ``transpose``: stored (in, out), e.g. Conv1D.
    ``stacked``: a 3-D GGUF expert tensor ``(E, rows, cols)``, one slot per expert."""

    pattern: str
    role: str | None = None
    split: SplitFn | None = None
    transpose: bool = False
    stacked: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


def is_float(info: TensorInfo) -> bool:
    return not info.dtype.upper().startswith(NON_FLOAT_PREFIXES)


def hf_rows(info: TensorInfo, transpose: bool) -> int:
    """Rows of the tensor in HF layout (columns of a transposed Conv1D weight)."""
    if transpose and len(info.shape) == 2:
        return info.shape[1]
    return info.shape[0] if info.shape else 1


def map_tensors(tensors: Iterable[TensorInfo], rules: list[Rule], shape: Shape) -> list[RoleSlot]:
    """Every float tensor matched by a rule, as slots; a role claimed twice is an error."""
    slots: list[RoleSlot] = []
    seen: dict[tuple[str, int | None, int | None], str] = {}
    for info in tensors:
        if not is_float(info):
            continue
        for rule in rules:
            m = rule.regex.fullmatch(info.name)
            if m is None:
                continue
            groups = m.groupdict()
            layer = int(groups["layer"]) if groups.get("layer") is not None else None
            expert = int(groups["expert"]) if groups.get("expert") is not None else None
            for slot in _slots(rule, info, layer, expert, shape):
                key = (slot.role, slot.layer, slot.expert)
                if key in seen:
                    raise ModelFileError(shape.where, f"tensors {seen[key]!r} and {info.name!r} "
                                         f"both map to role {slot.role} (layer {layer})")
                seen[key] = info.name
                slots.append(slot)
            break
    return slots


def _slots(rule: Rule, info: TensorInfo, layer: int | None, expert: int | None,
           shape: Shape) -> list[RoleSlot]:
    """The rule's slots for one tensor. ``extra["shape"]`` is the slot's HF-layout shape, so
    callers can size reads without probing."""
    if rule.stacked:
        if len(info.shape) != 3:
            raise ModelFileError(shape.where, f"expert tensor {info.name} has shape "
                                 f"{list(info.shape)}, expected 3 dimensions (experts, rows, cols)")
        assert rule.role is not None
        return [RoleSlot(rule.role, layer, info.name, expert=e,
                         extra={"stacked": True, "shape": tuple(info.shape[1:])})
                for e in range(info.shape[0])]
    full = tuple(info.shape)
    if rule.transpose and len(full) == 2:
        full = (full[1], full[0])
    if rule.split is not None:
        parts = rule.split(shape, info, hf_rows(info, rule.transpose))
        return [RoleSlot(role, layer, info.name, expert=expert, transpose=rule.transpose,
                         row_ranges=ranges,
                         extra={"shape": (sum(b - a for a, b in ranges), *full[1:])})
                for role, ranges in parts]
    assert rule.role is not None
    return [RoleSlot(rule.role, layer, info.name, expert=expert, transpose=rule.transpose,
                     extra={"shape": full})]


# --------------------------------------------------------------------------- fused splits

def _check_rows(shape: Shape, info: TensorInfo, rows: int, want: int, what: str) -> None:
    if rows != want:
        raise ModelFileError(shape.where, f"{info.name} has {rows} rows but the config's "
                             f"{what} imply {want}; config and weights disagree")


def split_qkv_concat(shape: Shape, info: TensorInfo, rows: int) -> list[tuple[str, Ranges]]:
    """Q then K then V rows, with GQA widths (Phi-3 ``qkv_proj``, GPT-2 ``c_attn`` after its
    transpose, GGUF ``attn_qkv``). Bias vectors split the same way."""
    q = shape.heads * shape.head_dim
    kv = shape.kv_heads * shape.head_dim
    _check_rows(shape, info, rows, q + 2 * kv, f"{shape.heads} heads / {shape.kv_heads} kv heads "
                f"of dim {shape.head_dim}")
    suffix = "_bias" if info.name.endswith("bias") else ""
    return [("attn.q" + suffix, ((0, q),)), ("attn.k" + suffix, ((q, q + kv),)),
            ("attn.v" + suffix, ((q + kv, q + 2 * kv),))]


def split_qkv_per_head(shape: Shape, info: TensorInfo, rows: int) -> list[tuple[str, Ranges]]:
    """GPT-NeoX / BLOOM ``query_key_value``: rows viewed as (heads, 3, head_dim), so head h's
    q is rows [3h*hd, 3h*hd+hd), its k the next hd rows, its v the next."""
    h, hd = shape.heads, shape.head_dim
    _check_rows(shape, info, rows, 3 * h * hd, f"{h} heads of dim {hd}")
    suffix = "_bias" if info.name.endswith("bias") else ""
    out = []
    for j, role in enumerate(("attn.q", "attn.k", "attn.v")):
        ranges = tuple((3 * k * hd + j * hd, 3 * k * hd + (j + 1) * hd) for k in range(h))
        out.append((role + suffix, ranges))
    return out


def split_gate_up(shape: Shape, info: TensorInfo, rows: int) -> list[tuple[str, Ranges]]:
    """Fused ``gate_up_proj`` (Phi-3; GGUF phi3 ``ffn_up``): gate rows first, then up."""
    if rows % 2:
        raise ModelFileError(shape.where, f"{info.name} has an odd number of rows ({rows}); "
                             "a fused gate/up projection needs two equal halves")
    half = rows // 2
    if shape.intermediate:
        _check_rows(shape, info, rows, 2 * shape.intermediate, "intermediate_size")
    return [("mlp.gate", ((0, half),)), ("mlp.up", ((half, rows),))]
