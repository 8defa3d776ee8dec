"""The screening descriptor: a few kilobytes per model that survive disguises and compare in
microseconds, vectorised over the whole library.

What it is. Take the embedding rows of the first :data:`N_TOKENS` token strings of the
fingerprint's bottom-k sample (tokens are chosen by the sha256 of their canonical spelling,
so two models with overlapping vocabularies pick overlapping tokens whatever their ids),
centre them by the mean of the whole sample, scale each to unit length and keep the upper
triangle of their cosine Gram matrix. Two models are compared by the Pearson correlation of
their Gram entries over the token pairs both have.

Why this one (chosen from invariances, before any evaluation pair was looked at):

* a residual rotation ``E -> E Q`` (QuaRot/SpinQuant, any orthogonal Q) and a residual
  permutation or sign flip leave ``E E^T`` unchanged, and centring commutes with both;
* hidden-unit and head permutations, norm folding, layer drop, depth up-scaling, MoE
  upcycling and quantisation do not touch the embedding or only add noise to it;
* a vocabulary permuted or extended keeps its token strings, and the comparison runs over
  the shared ones; scaling the embedding is removed by the unit rows;
* fine-tuning moves embeddings little, so a descendant's Gram stays close to its parent's,
  while independently trained models agree only on the coarse structure the data imposes.

It is a *ranking*, never evidence: the verdicts come from the decisive checks run on the
best-ranked entries. Pearson over about two thousand Gram entries is float64 arithmetic on
float32 storage; a model without an embedding sketch, or sharing fewer than
:data:`MIN_SHARED` sampled tokens with the candidate, gets no score and ranks last.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.sketches import decode

#: Bumped when the meaning of a stored descriptor changes; stale ones are recomputed.
DESCRIPTOR_VERSION = 1
#: Tokens per library entry (the Gram's upper triangle: 2016 float32 = 8 kB).
N_TOKENS = 64
#: Fewer shared tokens than this and a pair gets no score.
MIN_SHARED = 8
_IU, _JU = np.triu_indices(N_TOKENS, 1)


def token_key(token: str) -> int:
    """The first 8 bytes of the sha256 that chose the token, big-endian: sorting keys sorts
    tokens the way the bottom-k sample did."""
    return int.from_bytes(hashlib.sha256(token.encode("utf-8", "replace")).digest()[:8], "big")


@dataclass(frozen=True)
class Descriptor:
    """A library entry's descriptor: ``keys`` (uint64, ``n`` used of N_TOKENS) and the
    upper-triangle Gram entries (float32) of those tokens, zero-padded."""

    keys: np.ndarray
    gram: np.ndarray
    n: int

    def to_blobs(self) -> tuple[bytes, bytes]:
        return (np.ascontiguousarray(self.keys, dtype="<u8").tobytes(),
                np.ascontiguousarray(self.gram, dtype="<f4").tobytes())

    @classmethod
    def from_blobs(cls, keys: bytes, gram: bytes, n: int) -> Descriptor:
        return cls(np.frombuffer(keys, dtype="<u8"), np.frombuffer(gram, dtype="<f4"), int(n))


@dataclass(frozen=True)
class Probe:
    """A candidate's side: every sampled token's key (sorted) and their full cosine Gram."""

    keys: np.ndarray
    gram: np.ndarray


def _rows(fp: Fingerprint) -> tuple[list[str], np.ndarray] | None:
    """The embedding sketch's tokens and rows, or None without a usable one."""
    emb = (fp.sketches or {}).get("embedding")
    if not isinstance(emb, dict) or not isinstance(emb.get("tokens"), list):
        return None
    try:
        rows = decode(emb)
    except (KeyError, ValueError, TypeError):
        return None
    tokens = [str(t) for t in emb["tokens"]]
    if rows.ndim != 2 or rows.shape[0] != len(tokens) or rows.shape[0] < MIN_SHARED:
        return None
    return tokens, rows


def _unit(rows: np.ndarray, mean: np.ndarray) -> np.ndarray:
    out = np.asarray(rows, dtype=np.float64) - mean
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms


def probe(fp: Fingerprint) -> Probe | None:
    """The candidate's probe (all sampled tokens), or None without an embedding sketch."""
    got = _rows(fp)
    if got is None:
        return None
    tokens, rows = got
    keys = np.array([token_key(t) for t in tokens], dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    unit = _unit(rows[order], rows.mean(axis=0, dtype=np.float64))
    return Probe(keys[order], (unit @ unit.T).astype(np.float32))


def describe_rows(tokens: list[str], rows: np.ndarray) -> Descriptor | None:
    """The descriptor of an embedding sample (``rows[i]`` is token ``tokens[i]``'s row):
    the first N_TOKENS tokens by key, centred by the mean of the whole sample. Only their
    Gram is computed, so describing a wide model costs a 64 x 64 product."""
    if rows.ndim != 2 or rows.shape[0] != len(tokens) or rows.shape[0] < MIN_SHARED:
        return None
    keys = np.array([token_key(t) for t in tokens], dtype=np.uint64)
    n = min(N_TOKENS, len(keys))
    first = np.argsort(keys, kind="stable")[:n]
    unit = _unit(rows[first], rows.mean(axis=0, dtype=np.float64))
    full = np.zeros((N_TOKENS, N_TOKENS), dtype=np.float32)
    full[:n, :n] = unit @ unit.T
    padded = np.zeros(N_TOKENS, dtype=np.uint64)
    padded[:n] = keys[first]
    return Descriptor(padded, full[_IU, _JU], n)


def describe(fp: Fingerprint) -> Descriptor | None:
    """The stored descriptor of ``fp`` (the probe's first N_TOKENS tokens), or None
    without a usable embedding sketch."""
    got = _rows(fp)
    return None if got is None else describe_rows(*got)


def probe_of(desc: Descriptor) -> Probe:
    """A stored descriptor as a probe (entry against entry: the direction heuristics)."""
    full = np.zeros((N_TOKENS, N_TOKENS), dtype=np.float32)
    full[_IU, _JU] = desc.gram
    full = full + full.T
    np.fill_diagonal(full, 1.0)
    return Probe(desc.keys[: desc.n].copy(), full[: desc.n, : desc.n])


@dataclass
class Library:
    """Every entry's descriptor stacked for vectorised scoring."""

    keys: np.ndarray    # (N, N_TOKENS) uint64
    grams: np.ndarray   # (N, N_TOKENS*(N_TOKENS-1)/2) float32
    counts: np.ndarray  # (N,) int

    @classmethod
    def stack(cls, descs: list[Descriptor | None]) -> Library:
        n = len(descs)
        keys = np.zeros((n, N_TOKENS), dtype=np.uint64)
        grams = np.zeros((n, len(_IU)), dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        for i, d in enumerate(descs):
            if d is not None and len(d.keys) == N_TOKENS and len(d.gram) == len(_IU):
                keys[i], grams[i], counts[i] = d.keys, d.gram, d.n
        return cls(keys, grams, counts)


def score(p: Probe, lib: Library, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of the candidate's and each entry's Gram over their shared token pairs
    (float64; NaN where fewer than :data:`MIN_SHARED` tokens are shared) and the number of
    shared tokens, for every entry at once."""
    n_entries = lib.keys.shape[0]
    scores = np.full(n_entries, np.nan)
    shared = np.zeros(n_entries, dtype=np.int64)
    m = len(p.keys)
    if m == 0:
        return scores, shared
    used = np.arange(N_TOKENS)
    for start in range(0, n_entries, chunk):
        keys = lib.keys[start:start + chunk]
        pos = np.clip(np.searchsorted(p.keys, keys), 0, m - 1)
        valid = (p.keys[pos] == keys) & (used[None, :] < lib.counts[start:start + chunk, None])
        shared[start:start + chunk] = valid.sum(axis=1)
        w = (valid[:, _IU] & valid[:, _JU]).astype(np.float64)
        a = p.gram[pos[:, _IU], pos[:, _JU]].astype(np.float64)
        b = lib.grams[start:start + chunk].astype(np.float64)
        nw = w.sum(axis=1)
        safe = np.maximum(nw, 1.0)
        ma = (a * w).sum(axis=1) / safe
        mb = (b * w).sum(axis=1) / safe
        da = (a - ma[:, None]) * w
        db = (b - mb[:, None]) * w
        cov = (da * db).sum(axis=1)
        var = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(var > 0, cov / np.where(var > 0, var, 1.0), np.nan)
        ok = shared[start:start + chunk] >= MIN_SHARED
        scores[start:start + chunk] = np.where(ok, r, np.nan)
    return scores, shared


def rank(scores: np.ndarray) -> np.ndarray:
    """Entry indices best first; entries without a score last (stable)."""
    key = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-key, kind="stable")


def describe_json(desc: Descriptor | None) -> dict[str, Any]:
    return {"version": DESCRIPTOR_VERSION, "tokens": 0 if desc is None else desc.n}
