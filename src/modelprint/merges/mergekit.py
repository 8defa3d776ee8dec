"""The nearest mergekit configuration, as YAML text.

mergekit's documented schema: ``merge_method``, ``base_model`` (for slerp: the model t = 0
returns; for task-vector methods: the model the task vectors are taken from), ``models`` with
per-model ``parameters`` (``weight``, ``density``), global ``parameters`` (slerp's ``t``,
``normalize``) and ``dtype``. A parameter may be a list of anchor values that mergekit
interpolates over the layers -- how a per-layer gradient is written; the decomposition's
per-layer estimates are written as such a list when they vary more than their uncertainty.
Names are written as JSON strings (valid YAML, and safe for any characters).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelprint.merges.decompose import Decomposition


def _q(s: str) -> str:
    return json.dumps(s)


def _r(x: float) -> str:
    return f"{round(float(x), 3):g}"


def _param(d: Decomposition, i: int, value: float) -> str:
    if d.gradient and d.per_layer:
        return "[" + ", ".join(_r(ests[i].value) for _, ests in sorted(d.per_layer.items())) + "]"
    return _r(value)


def mergekit_yaml(d: Decomposition, num_layers: int | None = None) -> str:
    """The mergekit YAML closest to the decomposition (parents judged not parents left out)."""
    real = [(i, p) for i, p in enumerate(d.parents) if p.is_parent]
    lines = [f"# nearest mergekit recipe for {d.candidate} (modelprint decompose)",
             f"merge_method: {d.method}"]
    if d.method == "slerp":
        v0 = d.base if d.base is not None and len(real) == 1 else (
            real[0][1].name if real else d.parents[0].name)
        other = real[-1] if real else (len(d.parents) - 1, d.parents[-1])
        lines.append(f"base_model: {_q(v0)}")
        lines.append("models:")
        names = [v0] + [p.name for _, p in real if p.name != v0]
        for name in names:
            lines.append(f"  - model: {_q(name)}")
        lines.append("parameters:")
        lines.append(f"  t: {_param(d, other[0], other[1].weight.value)}")
    else:
        if d.base is not None and d.method != "linear":
            lines.append(f"base_model: {_q(d.base)}")
        lines.append("models:")
        for i, p in real:
            lines.append(f"  - model: {_q(p.name)}")
            lines.append("    parameters:")
            lines.append(f"      weight: {_param(d, i, p.weight.value)}")
            if d.density is not None:
                lines.append(f"      density: {_r(d.density.value)}")
        if d.method == "ties":
            lines.append("parameters:")
            norm = bool(d.evidence.get("sparsity", {}).get("normalised"))
            lines.append(f"  normalize: {'true' if norm else 'false'}")
        elif d.method == "linear":
            lines.append("parameters:")
            lines.append("  normalize: false")
    if num_layers:
        lines.append(f"# {num_layers} layers; per-layer lists are anchor values over them")
    lines.append("dtype: float32")
    return "\n".join(lines) + "\n"
