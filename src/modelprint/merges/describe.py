"""The decomposition in one sentence: what a verdict or a report line says about a merge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelprint.merges.decompose import Decomposition

METHOD_WORDS = {"linear": "linear", "slerp": "SLERP-like", "task_arithmetic":
                "task arithmetic", "ties": "TIES", "dare_ties": "DARE-TIES",
                "dare_linear": "DARE (linear)"}


def _ranges(layers: list[int]) -> str:
    out, start, prev = [], None, None
    for x in layers:
        if start is None:
            start = prev = x
        elif prev is not None and x == prev + 1:
            prev = x
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = x
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def layer_profile(d: Decomposition) -> str:
    """"layers 0-11 mostly A, 12-23 mostly B" from the per-layer weights (only when the
    heaviest parent changes along the depth)."""
    if not d.per_layer:
        return ""
    names = [p.name for p in d.parents]
    top: dict[str, list[int]] = {}
    for layer, ests in sorted(d.per_layer.items()):
        k = max(range(len(ests)), key=lambda i: ests[i].value)
        top.setdefault(names[k], []).append(layer)
    if len(top) < 2:
        return ""
    parts = [f"layers {_ranges(ls)} mostly {name}" for name, ls in top.items()]
    return "; ".join(parts)


def summary(d: Decomposition) -> str:
    """e.g. "merge of A (0.62 ± 0.02) and B (0.38 ± 0.02), SLERP-like; layers 0-11 mostly A;
    C is not a parent (weight 0.00)"."""
    real = [p for p in d.parents if p.is_parent]
    if not real:
        return ("no merge of the given parents explains the candidate: every weight is "
                "indistinguishable from 0")
    listed = [f"{p.name} ({p.weight})" for p in real]
    if d.base_weight is not None and abs(d.base_weight.value) >= 0.01 and \
            (d.base_weight.lo > 0 or d.base_weight.hi < 0):
        listed.append(f"base {d.base} ({d.base_weight})")
    joined = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    words = METHOD_WORDS.get(d.method, d.method)
    text = f"merge of {joined}, {words}"
    if d.density is not None:
        text += f" (density {d.density})"
    profile = layer_profile(d)
    if profile:
        text += f"; {profile}"
    for p in d.parents:
        if not p.is_parent:
            text += f"; {p.name} is not a parent (weight {p.weight.value:.2f})"
    return text
