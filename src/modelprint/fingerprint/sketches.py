"""Compact, aligned samples of a model's weight matrices.

Decisive element-wise tests (``weights_cosine``, ``identity``) must also run when a reference
is only a ``*.fp.json`` file. For every matrix slot we keep the sub-matrix at a fixed set of
rows ``R`` and columns ``C`` chosen by a RNG seeded from the slot's *shape* alone, so two
models with the same shape sample exactly the same positions whatever their names, and a copy
of a model yields the same sketch as the original. ``|R| = 64`` rows by ``|C| = 64`` columns
in float16 (≈ 11 kB per slot in JSON): enough for a row-permutation test with a clear margin
(see ``checks/permutation.py``), small enough that a 48-layer model's fingerprint stays a few
MB. Experts beyond the first :data:`MAX_EXPERTS` of a layer are not sketched.

Two more sketches serve the alignment checks (AWM, arXiv 2510.06738):

* ``embedding``: the embedding rows of up to :data:`EMBED_TOKENS` token strings, chosen as the
  tokens whose sha256 is smallest (a bottom-k sample of the vocabulary: two models that share
  most of a vocabulary share most of their samples, whatever their token ids), float16. Since
  sketch version 2 the strings are in the canonical spelling of
  :func:`modelprint.fingerprint.tokens.canonical_token` (byte-level "Ġthe" and SentencePiece
  "▁the" are both " the"), which is what is hashed, stored and matched.
* ``projection``: per layer, ``W^T R`` for the attention Q and K weights ``W`` (out x d) and a
  seeded Gaussian ``R`` (out x :data:`PROJ_DIM`) / sqrt(PROJ_DIM): the residual axis stays
  whole (it is what the embedding alignment permutes) while the output axis, which linear CKA
  only sees through its Gram matrix, is compressed by a random projection (Johnson-Lindenstrauss).

JSON layout: ``sketches["matrix"][f"{role}|{layer}|{expert}"] = {"shape": [r, c], "rows": [...],
"cols": [...], "values": base64(float16 little-endian, row-major |R|x|C|)}`` (``layer`` and
``expert`` are ``-`` when None).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
from collections.abc import Iterable
from concurrent.futures import Executor
from functools import lru_cache, partial
from typing import Any

import numpy as np

from modelprint.fingerprint.tokens import remembered_canonical_tokens

SKETCH_ROWS = 64
SKETCH_COLS = 64
MAX_EXPERTS = 8
EMBED_TOKENS = 1024
PROJ_DIM = 32
PROJ_ROLES = ("attn.q", "attn.k")
SKETCH_VERSION = 2


def slot_key(role: str, layer: int | None, expert: int | None) -> str:
    return f"{role}|{'-' if layer is None else layer}|{'-' if expert is None else expert}"


def positions(shape: tuple[int, int], k: int = SKETCH_ROWS, m: int = SKETCH_COLS
              ) -> tuple[np.ndarray, np.ndarray]:
    """The sampled rows and columns for a matrix of ``shape``: a pure function of the shape."""
    seed = int.from_bytes(hashlib.sha256(f"modelprint-sketch:{shape[0]}x{shape[1]}".encode())
                          .digest()[:8], "little")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(shape[0], size=min(k, shape[0]), replace=False))
    cols = np.sort(rng.choice(shape[1], size=min(m, shape[1]), replace=False))
    return rows, cols


def encode(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f2").tobytes()).decode("ascii")


def decode(entry: dict[str, Any]) -> np.ndarray:
    """float64 array of one sketch entry (shape from ``rows``/``cols`` or ``dims``). The
    values are base64 float16 text (a ``*.fp.json``) or a float16 array (a cache entry read
    back by ``fingerprint/packed.py``); a new float64 array either way."""
    values = entry["values"]
    if isinstance(values, np.ndarray):
        arr = values.astype(np.float64)
    else:
        arr = np.frombuffer(base64.b64decode(values), dtype="<f2").astype(np.float64)
    if "dims" in entry:
        return arr.reshape(entry["dims"])
    return arr.reshape(len(entry["rows"]), len(entry["cols"]))


def token_sample(vocab: list[str], k: int = EMBED_TOKENS) -> list[tuple[str, int]]:
    """The bottom-k canonical token strings by sha256, with their ids (first id wins when two
    tokens share a canonical form)."""
    ids = [i for i, tok in enumerate(vocab) if isinstance(tok, str)]
    # remembered: the checks' token maps (tokens.first_ids) then find the same spellings
    canon = remembered_canonical_tokens([vocab[i] for i in ids])
    first = dict(zip(reversed(canon), reversed(ids), strict=True))  # the first id wins
    sha = hashlib.sha256
    keyed = heapq.nsmallest(k, ((sha(t.encode("utf-8", "replace")).digest(), t) for t in first))
    return [(t, first[t]) for _, t in keyed]


@lru_cache(maxsize=8)
def projection_matrix(out_dim: int, k: int = PROJ_DIM) -> np.ndarray:
    """Seeded Gaussian projection of the output axis, a pure function of ``out_dim``; drawn
    once per size (read-only), since every layer's Q (and K) has the same output size."""
    seed = int.from_bytes(hashlib.sha256(f"modelprint-proj:{out_dim}".encode()).digest()[:8],
                          "little")
    r = np.random.default_rng(seed).normal(size=(out_dim, k)) / np.sqrt(k)
    r.flags.writeable = False
    return r


#: Columns of ``W`` converted to float64 at a time for its projection: a 7B-class Q (4096 x
#: 4096) held whole in float64 was 128 MB beside its float32 read, and the projections now
#: run two at a time. Each output row is still one product over all of ``W``'s rows; with
#: this numpy/OpenBLAS the blocked result had the same bits as the whole product on every
#: case checked (the benchmark checkpoints: BF16, GGUF Q4_0, MoE, d = 576 to 4096; random
#: float32 matrices of those shapes), while blocks of 1000 columns did not on one (3e-16).
#: Nothing guarantees that for another BLAS; the entries are float16 either way.
PROJ_BLOCK = 256


def projection_entry(matrix: np.ndarray) -> dict[str, Any]:
    """``W^T R`` of an (out x d) matrix: d x PROJ_DIM, float16."""
    r = projection_matrix(matrix.shape[0])
    proj = np.empty((matrix.shape[1], r.shape[1]), dtype=np.float64)
    for i in range(0, matrix.shape[1], PROJ_BLOCK):
        proj[i:i + PROJ_BLOCK] = np.asarray(matrix[:, i:i + PROJ_BLOCK], dtype=np.float64).T @ r
    return {"dims": [int(proj.shape[0]), int(proj.shape[1])], "values": encode(proj)}


def embedding_entry(tokens: list[str], rows: np.ndarray) -> dict[str, Any]:
    rows = np.asarray(rows, dtype=np.float64)
    return {"tokens": tokens, "dims": [int(rows.shape[0]), int(rows.shape[1])],
            "values": encode(rows)}


def entry(shape: tuple[int, int], sampled_rows: np.ndarray) -> dict[str, Any]:
    """The sketch entry of a matrix of ``shape`` given its rows at ``positions(shape)[0]``."""
    rows, cols = positions(shape)
    sub = np.asarray(sampled_rows, dtype=np.float64)[:, cols]
    return {"shape": [shape[0], shape[1]], "rows": rows.tolist(), "cols": cols.tolist(),
            "values": encode(sub)}


def entry_from_matrix(matrix: np.ndarray) -> dict[str, Any]:
    """Sketch entry of a whole in-memory matrix (tests, and small tensors)."""
    shape = (int(matrix.shape[0]), int(matrix.shape[1]))
    return entry(shape, np.asarray(matrix)[positions(shape)[0]])


def _matrix_slots(slots: Iterable[Any]) -> Iterable[Any]:
    for slot in slots:
        if slot.expert is not None and slot.expert >= MAX_EXPERTS:
            continue
        yield slot


def _projected_entries(source: Any, slot: Any) -> tuple[Any, Any]:
    """``(projection entry, matrix entry)`` of a Q/K slot, either None for a hostile file's
    1-D or empty "Q". Q/K are read whole for the projection anyway: their rows are sampled
    from that one read (a second, row-by-row read costs ~80 us per row on quantised GGUF)."""
    from modelprint.arch import load_slot

    whole = load_slot(source, slot)
    if whole.ndim != 2 or 0 in whole.shape:
        return None, None
    sampled = None
    if whole.shape[0] >= 2 and whole.shape[1] >= 2:
        shape2 = (int(whole.shape[0]), int(whole.shape[1]))
        sampled = entry(shape2, whole[positions(shape2)[0]])
    return projection_entry(whole), sampled


def compute_sketches(source: Any, arch: Any, slots: Any,
                     pool: Executor | None = None) -> dict[str, Any]:
    """Sketch every 2-D float slot of the model (vectors are kept whole elsewhere).

    ``pool``: threads for the Q/K projections, which read whole matrices in float64 and are
    most of this pass (0.4-0.5 s of a 1.7 GB BF16 checkpoint with d = 2048, one core): the
    conversions and products release the GIL, so the fingerprint's two hashing threads, idle
    by the time the statistics pass ends, compute them two at a time. Each is the same
    single-threaded product either way, so the entries are the same bytes."""
    from modelprint.arch import load_slot  # local: arch imports heavy optional modules

    matrix_slots = list(_matrix_slots(slots))
    todo = [s for s in matrix_slots if _projected(s)]
    work = partial(_projected_entries, source)
    done = iter(pool.map(work, todo) if pool is not None else map(work, todo))
    out: dict[str, Any] = {}
    proj: dict[str, Any] = {}
    for slot in matrix_slots:
        if _projected(slot):
            key = slot_key(slot.role, slot.layer, slot.expert)
            proj[key], sampled = next(done)
            if sampled is not None:
                out[key] = sampled
            continue
        shape = slot.extra.get("shape") if slot.extra else None
        if shape is None:
            probe = load_slot(source, slot, rows=np.array([0]))
            if probe.ndim != 2:
                continue
            shape = (_slot_rows(source, slot, probe), probe.shape[1])
        if len(shape) != 2 or shape[0] < 2 or shape[1] < 2:
            continue
        rows, _ = positions((int(shape[0]), int(shape[1])))
        block = load_slot(source, slot, rows=rows)
        out[slot_key(slot.role, slot.layer, slot.expert)] = entry(
            (int(shape[0]), int(shape[1])), block)
    result: dict[str, Any] = {"version": SKETCH_VERSION, "matrix": out} if out else {}
    embed = _embedding_sketch(source, slots, load_slot)
    if embed is not None:
        result["embedding"] = embed
    for s in slots:  # projected slots that _matrix_slots skipped (none today; kept safe)
        key = slot_key(s.role, s.layer, s.expert)
        if _projected(s) and key not in proj:
            proj[key] = projection_entry(load_slot(source, s))
    proj = {k: v for k, v in proj.items() if v is not None}
    if proj:
        result["projection"] = proj
    return result


def _projected(slot: Any) -> bool:
    return bool(slot.role in PROJ_ROLES and slot.layer is not None and slot.expert is None)


def _embedding_sketch(source: Any, slots: Any, load_slot: Any) -> dict[str, Any] | None:
    embed = next((s for s in slots if s.role == "embed" and s.layer is None), None)
    vocab = source.vocabulary()
    if embed is None or not vocab:
        return None
    stored = tuple(source.tensors()[embed.tensor].shape)
    if len(stored) != 2 or 0 in stored:      # nothing to sample from (a damaged file)
        return None
    probe = load_slot(source, embed, rows=np.array([0]))
    n_rows = _slot_rows(source, embed, probe)
    sample = [(t, i) for t, i in token_sample(vocab[:n_rows])]
    if not sample:
        return None
    ids = np.array([i for _, i in sample])
    order = np.argsort(ids)
    rows = np.empty((len(ids), probe.shape[1]), dtype=np.float64)
    rows[order] = load_slot(source, embed, rows=ids[order])
    return embedding_entry([t for t, _ in sample], rows)


def _slot_rows(source: Any, slot: Any, probe: np.ndarray) -> int:
    """Number of HF-layout rows of a slot, from the stored tensor and the slot's selection."""
    if slot.row_ranges is not None:
        return sum(stop - start for start, stop in slot.row_ranges)
    info = source.tensors()[slot.tensor]
    shape = tuple(info.shape)
    if slot.expert is not None and len(shape) == 3:
        shape = shape[1:]
    return int(shape[1] if slot.transpose else shape[0])
