"""Pair up the matrix sketches of two fingerprints slot by slot.

Both element-wise checks (``identity``, ``weights_cosine``) compare the same role of the same
layer (and expert) when the shapes agree; sketches of equal shapes sample equal positions
(``fingerprint/sketches.py``), compared in canonical form (norm gains folded into the matrices
that read the normed stream). Layers pair index by index unless a layer alignment
``[(layer_a, layer_b), ...]`` is given (depth changes).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelprint.checks.canonical import fold_columns, reader_gain
from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode


@dataclass(frozen=True)
class SketchPair:
    role: str
    layer_a: int | None
    layer_b: int | None
    expert: int | None
    shape: tuple[int, int]
    a: np.ndarray
    b: np.ndarray


def _parse(key: str) -> tuple[str, int | None, int | None]:
    role, layer, expert = key.split("|")
    return role, None if layer == "-" else int(layer), None if expert == "-" else int(expert)


def _index(fp: Fingerprint) -> dict[tuple[str, int | None, int | None], dict[str, Any]]:
    matrix = (fp.sketches or {}).get("matrix", {})
    return {_parse(k): v for k, v in matrix.items()}


def has_sketches(fp: Fingerprint) -> bool:
    return bool((fp.sketches or {}).get("matrix"))


def sketch_pairs(a: Fingerprint, b: Fingerprint,
                 layer_map: list[tuple[int, int]] | None = None) -> Iterator[SketchPair]:
    """Same-role, same-shape sketch pairs; model-level roles (layer None) pair directly."""
    ia, ib = _index(a), _index(b)
    mapping = dict(layer_map) if layer_map is not None else None
    for (role, layer, expert), ea in sorted(ia.items(), key=lambda kv: str(kv[0])):
        if layer is None:
            lb: int | None = None
        elif mapping is None:
            lb = layer
        elif layer in mapping:
            lb = mapping[layer]
        else:
            continue
        eb = ib.get((role, lb, expert))
        if eb is None or list(ea["shape"]) != list(eb["shape"]):
            continue
        yield SketchPair(role, layer, lb, expert, (int(ea["shape"][0]), int(ea["shape"][1])),
                         _canonical(a, role, layer, ea), _canonical(b, role, lb, eb))


#: id(fingerprint) -> (a weak reference to it, {(role, layer, id(entry)): canonical sketch}).
_DECODED: dict[int, tuple[weakref.ref[Fingerprint], dict[tuple[Any, ...], np.ndarray]]] = {}


def _canonical(fp: Fingerprint, role: str, layer: int | None, entry: dict[str, Any]
               ) -> np.ndarray:
    """The sketch with the norm gain its role reads through folded in (a folded copy then
    sketches like its original; ``checks/canonical.py``).

    Remembered per fingerprint object for as long as it lives: ``identity`` and
    ``weights_cosine`` both walk every sketch of both models, and decoding them was ~30 ms
    of each. The arrays are returned read-only, since both checks share them."""
    ident = id(fp)
    held = _DECODED.get(ident)
    if held is None or held[0]() is not fp:
        held = (weakref.ref(fp, lambda _: _DECODED.pop(ident, None)), {})
        _DECODED[ident] = held
    key = (role, layer, id(entry))
    out = held[1].get(key)
    if out is None:
        out = fold_columns(decode(entry), reader_gain(fp, role, layer),
                           np.asarray(entry["cols"]))
        out.flags.writeable = False
        held[1][key] = out
    return out
