"""Synthetic distractor entries of realistic shapes, written directly into a library store.

Thousands of real base models are not at hand, so the 1,000- and 10,000-entry libraries are
filled with synthetic fingerprints of the shapes real releases have (SmolLM2-135M to a
7B-class llama). To keep 10,000 of them on disk, the arrays are drawn from a pool per shape
(8 variants per tensor slot, 24 embeddings per width) and each distractor composes its
layers from the pool at random: every distractor is a distinct manifest with its own
descriptor, while identical arrays are stored once (the store is content-addressed). Each
distractor's token sample is its own random 90 % subset of a real vocabulary sample (the
zoo's or SmolLM2's), so it shares most tokens with the candidates -- the hard case for a
token-keyed prefilter. What they lack is a trained model's corpus-driven embedding structure:
their embeddings are low-rank plus noise. The bytes-per-entry measurement uses unpooled
fingerprints (see run.py), not these.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.arch.base import ArchInfo
from modelprint.fingerprint.model import Fingerprint, ModelInfo
from modelprint.fingerprint.sketches import (
    PROJ_DIM,
    SKETCH_COLS,
    SKETCH_ROWS,
    SKETCH_VERSION,
    slot_key,
)
from modelprint.library.core import ModelLibrary, now
from modelprint.library.descriptors import DESCRIPTOR_VERSION, describe, describe_rows
from modelprint.library.index import Entry

#: (hidden, layers, intermediate, heads, kv heads): shapes of real releases.
SHAPES = [(576, 30, 1536, 9, 3), (768, 12, 3072, 12, 12), (896, 24, 4864, 14, 2),
          (1024, 24, 2816, 16, 16), (2048, 24, 5632, 16, 16), (2048, 16, 8192, 32, 8),
          (3072, 28, 8192, 24, 8), (4096, 32, 11008, 32, 32)]
ROLES = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down")
POOL = 8
EMBED_POOL = 24


def _enc(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f2").tobytes()).decode()


def _template(shape: tuple[int, int, int, int, int], rng: np.random.Generator,
              tokens: list[str]) -> dict[str, Any]:
    d, layers, ff, heads, kv = shape
    arch = ArchInfo(family="llama", num_layers=layers, hidden_size=d, num_heads=heads,
                    num_kv_heads=kv, head_dim=d // heads, intermediate_size=ff,
                    vocab_size=32000, dtype="BF16", model_type="llama")
    fp = Fingerprint(model=ModelInfo(reference="synthetic", kind="fingerprint"),
                     architecture=arch)
    data = fp.to_json()
    matrix = {slot_key(r, 0, None): {"shape": [d, d], "rows": list(range(SKETCH_ROWS)),
                                     "cols": list(range(SKETCH_COLS)), "values": ""}
              for r in ROLES}
    data["sketches"] = {"version": SKETCH_VERSION, "matrix": matrix, "projection": {},
                        "embedding": {"tokens": tokens, "dims": [len(tokens), d],
                                      "values": ""}}
    return data


class Pool:
    """The arrays distractors of one shape are composed from, stored once."""

    def __init__(self, lib: ModelLibrary, shape: tuple[int, int, int, int, int],
                 rng: np.random.Generator, n_tokens: int) -> None:
        d = shape[0]
        put = lib.store.put_array
        self.sketch = [put(rng.standard_normal(SKETCH_ROWS * SKETCH_COLS).astype("<f2") * 0.02)
                       for _ in range(POOL * len(ROLES))]
        self.proj = [put((rng.standard_normal(d * PROJ_DIM) * 0.05).astype("<f2"))
                     for _ in range(POOL * 2)]
        self.embed: list[tuple[str, np.ndarray]] = []
        for _ in range(EMBED_POOL):
            basis = rng.standard_normal((16, d))
            e = rng.standard_normal((n_tokens, 16)) @ basis * 0.01 + \
                rng.standard_normal((n_tokens, d)) * 0.02
            arr = e.astype("<f2").ravel()
            self.embed.append((put(arr), arr))


def add_distractors(lib: ModelLibrary, n: int, vocabularies: list[list[str]],
                    seed: int = 0, prefix: str = "distractor") -> None:
    """Add ``n`` distractors (names ``prefix-00000`` ...) in batches of one transaction."""
    rng = np.random.default_rng(seed)
    pools: dict[tuple[int, int, int, int, int], Pool] = {}
    stored: dict[tuple[tuple[int, int, int, int, int], int, int], str] = {}
    batch: list[tuple[Entry, set[str]]] = []
    for i in range(n):
        shape = SHAPES[i % len(SHAPES)]
        vocab = vocabularies[i % len(vocabularies)]
        k = int(len(vocab) * 0.9)
        tokens = [vocab[j] for j in sorted(rng.choice(len(vocab), size=k, replace=False))]
        pool = pools.get(shape)
        if pool is None:
            pool = pools[shape] = Pool(lib, shape, rng, len(vocab))
        d, layers = shape[0], shape[1]
        manifest = _template(shape, rng, tokens)
        manifest["model"]["reference"] = f"synthetic:{prefix}-{i:05d}"
        used: set[str] = set()
        sk = manifest["sketches"]
        tmpl = sk["matrix"][slot_key("attn.q", 0, None)]
        sk["matrix"] = {}
        for layer in range(layers):
            for r in ROLES:
                ref = pool.sketch[int(rng.integers(len(pool.sketch)))]
                used.add(ref)
                entry = copy.copy(tmpl)
                entry["values"] = {"$npy": ref, "enc": "b64f2"}
                sk["matrix"][slot_key(r, layer, None)] = entry
            for r in ("attn.q", "attn.k"):
                ref = pool.proj[int(rng.integers(len(pool.proj)))]
                used.add(ref)
                sk["projection"][slot_key(r, layer, None)] = {
                    "dims": [d, PROJ_DIM], "values": {"$npy": ref, "enc": "b64f2"}}
        pick = int(rng.integers(len(pool.embed)))
        rows = pool.embed[pick][1].reshape(-1, d)[: len(tokens)]
        eref = stored.get((shape, pick, len(tokens)))
        if eref is None:  # the same rows every time: hash and write them once
            eref = stored[(shape, pick, len(tokens))] = lib.store.put_array(
                np.ascontiguousarray(rows).ravel())
        used.add(eref)
        sk["embedding"]["values"] = {"$npy": eref, "enc": "b64f2"}
        sk["embedding"]["dims"] = [len(tokens), d]
        digest = lib.store.put_manifest(manifest)
        desc = describe_rows(tokens, rows)
        if i < len(SHAPES):  # the shortcut is the library's own descriptor: check it
            fp_small = Fingerprint.from_json({**manifest, "sketches": {"embedding": {
                "tokens": tokens, "dims": [len(tokens), d], "values": _enc(rows)}}})
            again = describe(fp_small)
            assert desc is not None and again is not None
            assert np.allclose(desc.gram, again.gram, atol=1e-6)
        keys, gram = desc.to_blobs() if desc else (None, None)
        a = Fingerprint.from_json({**manifest, "sketches": {}}).architecture
        entry_row = Entry(
            name=f"{prefix}-{i:05d}", digest=digest, reference=manifest["model"]["reference"],
            revision=None, kind="synthetic", family=a.family, num_layers=a.num_layers,
            hidden_size=a.hidden_size, num_heads=a.num_heads, num_kv_heads=a.num_kv_heads,
            intermediate_size=a.intermediate_size, num_experts=None, vocab_size=a.vocab_size,
            dtype=a.dtype, tokenizer=None, findings="[]", files="{}", added=now(),
            stored_bytes=0, desc_version=DESCRIPTOR_VERSION, desc_n=desc.n if desc else 0,
            desc_keys=keys, desc_gram=gram)
        batch.append((entry_row, {digest, *used}))
        if len(batch) >= 500 or i == n - 1:
            with lib.index.write() as db:
                for row, objects in batch:
                    lib.index.insert(db, row)
                    lib.index.add_refs(db, objects)
            batch = []


def vocabulary(fp_path: Path) -> list[str]:
    data = json.loads(fp_path.read_text())
    return list(data["sketches"]["embedding"]["tokens"])
