"""Which of two related models is the parent, where the weights can say.

Relatedness is symmetric; derivation is not. Most derivations leave an asymmetric trace in
the model's *structure*, which the fingerprint records exactly:

* depth up-scaling (SOLAR) duplicates layers: the deeper model holds pairs of near-identical
  layers, so the shallower one is the parent; a deeper model without duplicated layers
  related to a shallower one lost layers to the shallower (layer drop, pruning);
* MoE upcycling turns a dense FFN into experts: the dense model is the parent;
* vocabulary extension adds tokens: the smaller vocabulary is the parent;
* width pruning removes hidden units or residual dimensions: the wider model is the parent.

For two models of one shape and format (a fine-tune, a merge, a permuted or rotated copy)
the weights carry no such trace, and the answer is "unknown" -- never a guess. Quantisation
is deliberately not used: a GGUF is often the *original* of a float model (the zoo's
SmolLM2 float models are dequantised from the Q4_1 GGUF release), so "the float model is the
parent" would be a guess that is wrong there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode

PARENT, CHILD = "parent", "child"
#: Cosine of two layers' sketches above which they count as one layer duplicated.
DUPLICATE_COSINE = 0.5


@dataclass(frozen=True)
class Direction:
    """``relation`` of the library entry to the candidate: ``parent`` (the entry is the
    candidate's ancestor), ``child`` (derived from the candidate) or None (unknown)."""

    relation: str | None
    reason: str


def duplicated_layers(fp: Fingerprint) -> bool:
    """Does the model hold two near-identical layers (the trace of depth up-scaling)?"""
    matrix = (fp.sketches or {}).get("matrix") or {}
    by_role: dict[str, list[np.ndarray]] = {}
    for key, entry in matrix.items():
        role, layer, expert = str(key).split("|")
        if layer == "-" or expert != "-" or role not in ("attn.q", "attn.o", "mlp.down"):
            continue
        try:
            v = decode(entry).ravel()
        except (KeyError, ValueError, TypeError):
            continue
        v = v - v.mean()
        n = np.linalg.norm(v)
        if n > 0:
            by_role.setdefault(role, []).append(v / n)
    for vecs in by_role.values():
        shapes = {v.shape for v in vecs}
        if len(vecs) < 2 or len(shapes) != 1:
            continue
        m = np.stack(vecs)
        sim = m @ m.T
        np.fill_diagonal(sim, 0.0)
        if float(sim.max()) > DUPLICATE_COSINE:
            return True
    return False


def direction(candidate: Fingerprint, entry: Fingerprint) -> Direction:
    """The entry's relation to the candidate, from structural traces only."""
    a, b = candidate.architecture, entry.architecture

    def say(entry_is_parent: bool, why: str) -> Direction:
        return Direction(PARENT if entry_is_parent else CHILD, why)

    if a.num_layers != b.num_layers:
        deeper_is_entry = b.num_layers > a.num_layers
        deeper = entry if deeper_is_entry else candidate
        if duplicated_layers(deeper):
            return say(not deeper_is_entry, "the deeper model repeats layers (depth "
                                            "up-scaling of the shallower one)")
        return say(deeper_is_entry, "the shallower model lacks layers the deeper one has "
                                    "(layer drop or pruning)")
    ea, eb = a.num_experts or 0, b.num_experts or 0
    if (ea > 1) != (eb > 1):
        return say(eb <= 1, "a mixture of experts related to a dense model is its upcycling")
    if a.vocab_size and b.vocab_size and a.vocab_size != b.vocab_size:
        return say(b.vocab_size < a.vocab_size, "the larger vocabulary extends the smaller")
    for field in ("hidden_size", "intermediate_size"):
        x, y = getattr(a, field), getattr(b, field)
        if x and y and x != y:
            return say(y > x, f"the narrower model ({field}) is pruned from the wider")
    return Direction(None, "same shape and format: the weights do not say which came first")
