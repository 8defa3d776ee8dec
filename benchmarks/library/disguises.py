"""Prefilter recall under disguises, and full synthetic fingerprints for bytes per entry.

Two measurements.

* :func:`real_recall` -- the disguise benchmark's function-preserving transforms
  (``benchmarks/disguise/transforms.py``: residual rotation with folded norms, Hadamard
  rotation, hidden-unit / head permutations, q/k, v/o, up/down and embedding scalings,
  vocabulary permutation and extension, untie, Phi-3 fused QKV, rotation + units), each
  applied to whole zoo models of the library (``llama-s.seed0``, ``qwen2-m.seed0`` and the
  real SmolLM2-135M as ``smollm2.hf``), also composed with a short fine-tune and a 4-bit GGUF
  round trip; every disguised copy is saved, fingerprinted by modelprint like any candidate,
  and ranked against the library.
* :func:`recall` -- the prefilter reads only the embedding sketch, so the disguises that
  touch it are also simulated directly on the sketches of the six library parents the
  transforms above cannot run on (Gemma 3 and all-MiniLM have no forward pass there): a
  random orthogonal rotation, a residual permutation with sign flips, a rescaled embedding,
  fine-tune-sized noise, a vocabulary extended by 25 % (new tokens enter the bottom-k
  sample), and all of them at once.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.arch.base import ArchInfo
from modelprint.fingerprint.model import Fingerprint, ModelInfo, TensorStat
from modelprint.fingerprint.sketches import (
    EMBED_TOKENS,
    PROJ_DIM,
    SKETCH_COLS,
    SKETCH_ROWS,
    SKETCH_VERSION,
    decode,
    embedding_entry,
    encode,
    slot_key,
)
from modelprint.library.descriptors import probe, rank, score

PARENTS = ("llama-s.seed0", "qwen2-m.seed0", "llama-w.seed0", "real.smollm2", "real.gemma3",
           "real.minilm")
UNTOUCHED = ("hidden-unit permutation", "head / KV-group permutation", "folded norm gains",
             "q/k, v/o, up/down rescaling", "untied lm_head", "fused QKV")


def _with_embedding(fp: Fingerprint, tokens: list[str], rows: np.ndarray) -> Fingerprint:
    out = copy.copy(fp)
    out.sketches = {**fp.sketches, "embedding": embedding_entry(tokens, rows)}
    return out


def _rotate(tokens: list[str], e: np.ndarray, rng: np.random.Generator
            ) -> tuple[list[str], np.ndarray]:
    q, _ = np.linalg.qr(rng.standard_normal((e.shape[1], e.shape[1])))
    return tokens, e @ q


def _permute(tokens: list[str], e: np.ndarray, rng: np.random.Generator
             ) -> tuple[list[str], np.ndarray]:
    perm = rng.permutation(e.shape[1])
    return tokens, e[:, perm] * rng.choice([-1.0, 1.0], size=e.shape[1])


def _scale(tokens: list[str], e: np.ndarray, rng: np.random.Generator
           ) -> tuple[list[str], np.ndarray]:
    return tokens, e * 3.7


def _noise(tokens: list[str], e: np.ndarray, rng: np.random.Generator
           ) -> tuple[list[str], np.ndarray]:
    return tokens, e + 0.1 * e.std() * rng.standard_normal(e.shape)


def _extend(tokens: list[str], e: np.ndarray, rng: np.random.Generator, vocab: int = 0
            ) -> tuple[list[str], np.ndarray]:
    n_new = max(256, vocab // 4)
    new = [f"<new-token-{i}-{rng.integers(1 << 30)}>" for i in range(n_new)]
    key = {t: hashlib.sha256(t.encode("utf-8", "replace")).digest() for t in tokens + new}
    keep = sorted(tokens + new, key=key.__getitem__)[:EMBED_TOKENS]
    row = {t: e[i] for i, t in enumerate(tokens)}
    scale = e.std()
    out = np.stack([row[t] if t in row else scale * rng.standard_normal(e.shape[1])
                    for t in keep])
    return keep, out


DISGUISES = {"rotation": [_rotate], "residual permutation + signs": [_permute],
             "embedding scaled": [_scale], "fine-tune noise (0.1 sd)": [_noise],
             "vocabulary +25 %": [_extend],
             "all of them": [_extend, _noise, _scale, _permute, _rotate]}


def recall(fps: dict[str, Fingerprint], screen: Any, names: list[str]) -> dict[str, Any]:
    """Rank of the original among the library for each disguised copy of each parent."""
    index = {n: i for i, n in enumerate(names)}
    rows = []
    for parent in PARENTS:
        fp = fps[parent]
        emb = fp.sketches["embedding"]
        tokens, base = list(emb["tokens"]), decode(emb)
        for label, steps in DISGUISES.items():
            rng = np.random.default_rng(abs(hash((parent, label))) % (1 << 32))
            t, e = tokens, base
            for step in steps:
                t, e = step(t, e, rng)
            p = probe(_with_embedding(fp, t, e))
            assert p is not None
            scores, _ = score(p, screen.library)
            order = list(rank(scores))
            r = order.index(index[parent])
            rows.append({"parent": parent, "disguise": label, "rank": r + 1,
                         "score": float(scores[index[parent]])})
    return {"rows": rows, "all_top10": all(r["rank"] <= 10 for r in rows),
            "worst_rank": max(r["rank"] for r in rows),
            "identical_by_construction": list(UNTOUCHED)}


#: library entries the whole-model disguises are applied to, and how each is stored
REAL_BASES = {"llama-s.seed0": "float32", "qwen2-m.seed0": "bfloat16", "smollm2.hf": "bfloat16"}
#: compositions after the strongest disguise (rotation + unit permutation)
COMPOSED = ("finetune", "gguf")


def _budget(base: str) -> Any:
    from benchmarks.disguise.compose import Budget

    if base.startswith("smollm2"):
        return Budget(ft_steps=4, ft_batch=4, ft_lr=1e-4, drop=(), experts=2, moe_steps=0,
                      gguf_qtype="Q4_0")
    return Budget(ft_steps=25, ft_batch=8, ft_lr=5e-4, drop=(), experts=2, moe_steps=0,
                  gguf_qtype="Q4_K" if base.startswith("qwen2") else "Q4_0")


def disguised_models(work: Path, zoo: dict[str, Any], zoo_root: Path
                     ) -> Iterator[tuple[str, str, Path | None, str]]:
    """(base, disguise, stored path or None, why not applicable) for every disguise of every
    :data:`REAL_BASES` entry; stored under ``work/disguised`` and reused when there."""
    import gc

    from benchmarks.disguise import compose as C
    from benchmarks.disguise import transforms as T
    from benchmarks.lineage.bpe import Encoder
    from benchmarks.lineage.corpus import load_corpus
    from benchmarks.lineage.recipes import PROFILES
    from benchmarks.lineage.tiny_lm import load_model

    texts = load_corpus(PROFILES["full"]["chars"]).texts["sft_a"]
    ft_text = "".join(texts)[:300_000]
    reg = T.registry(texts, PROFILES["full"]["vocab_ext"])
    for base, dtype in REAL_BASES.items():
        ref = (zoo_root / zoo[base]["path"]).resolve()
        subject: Any = None
        names = [*reg, *(f"rotation+units+{c}" for c in COMPOSED)]
        for ti, name in enumerate(names):
            out = work / "disguised" / base / name
            target = out / "model.gguf" if name.endswith("+gguf") else out
            if (out / "done").exists():
                yield base, name, target, ""
                continue
            if subject is None:
                subject = T.Subject.base(load_model(ref).double(),
                                         Encoder.load(ref / "tokenizer.json"))
            key = name if name in reg else "rotation+units"
            why = T.not_applicable(key, subject)
            if why:
                yield base, name, None, why
                continue
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            s = reg[key](subject, 100 * ti + 1 if name in reg else 100 * names.index(key) + 1)
            if name.endswith("+finetune"):
                s, _ = C.finetune(s, ft_text, _budget(base), seed=ti)
            if name.endswith("+gguf"):
                C.gguf_round_trip(s, target, _budget(base).gguf_qtype, name)
            else:
                T.save(s, out, name, dtype)
            (out / "done").write_text("")
            del s
            gc.collect()
            yield base, name, target, ""


def real_recall(work: Path, zoo: dict[str, Any], zoo_root: Path, screen: Any,
                names: list[str], cache: Path) -> dict[str, Any]:
    """Rank of the original among the library for each whole-model disguised copy."""
    import os

    os.environ["MODELPRINT_CACHE_DIR"] = str(cache)
    from modelprint.engine import Engine, Target

    index = {n: i for i, n in enumerate(names)}
    rows: list[dict[str, Any]] = []
    for base, name, path, why in disguised_models(work, zoo, zoo_root):
        if path is None:
            rows.append({"base": base, "disguise": name, "not_applicable": why})
            continue
        fp = Engine(offline=True).model(Target(str(path))).fingerprint
        p = probe(fp)
        if p is None:
            rows.append({"base": base, "disguise": name, "rank": None,
                         "note": "no embedding sketch"})
            continue
        scores, shared = score(p, screen.library)
        order = list(rank(scores))
        r = order.index(index[base])
        rows.append({"base": base, "disguise": name, "rank": r + 1,
                     "score": float(scores[index[base]]), "shared_tokens": int(shared[index[base]]),
                     "best_other": names[order[0]] if order[0] != index[base] else
                     names[order[1]]})
        print(rows[-1], flush=True)
    ranked = [r for r in rows if r.get("rank") is not None]
    return {"rows": rows, "cases": len(ranked),
            "top10": sum(r["rank"] <= 10 for r in ranked),
            "worst_rank": max((r["rank"] for r in ranked), default=None)}


def synthetic_fingerprint(d: int, layers: int, seed: int) -> Fingerprint:
    """A full (unpooled) fingerprint of a llama-shaped model: what one entry costs."""
    rng = np.random.default_rng(seed)
    ff = int(d * 2.75)
    arch = ArchInfo(family="llama", num_layers=layers, hidden_size=d, num_heads=max(1, d // 64),
                    num_kv_heads=max(1, d // 256), head_dim=64, intermediate_size=ff,
                    vocab_size=32000, dtype="BF16", model_type="llama")
    shapes = {"attn.q": (d, d), "attn.k": (d // 4, d), "attn.v": (d // 4, d),
              "attn.o": (d, d), "mlp.gate": (ff, d), "mlp.up": (ff, d), "mlp.down": (d, ff)}
    matrix, proj, tensors = {}, {}, []
    curves: dict[str, dict[str, list[float | None]]] = {}
    for layer in range(layers):
        for role, shape in shapes.items():
            vals = rng.standard_normal((SKETCH_ROWS, SKETCH_COLS)) * 0.02
            matrix[slot_key(role, layer, None)] = {
                "shape": list(shape), "rows": sorted(rng.choice(shape[0], 64, replace=False)
                                                     .tolist()),
                "cols": sorted(rng.choice(shape[1], 64, replace=False).tolist()),
                "values": encode(vals)}
            std = float(0.02 + 0.001 * rng.standard_normal())
            tensors.append(TensorStat(role=role, layer=layer, expert=None,
                                      tensor=f"model.layers.{layer}.{role}.weight",
                                      shape=list(shape), dtype="BF16",
                                      count=shape[0] * shape[1], mean=0.0, std=std, l2=1.0,
                                      sha256=hashlib.sha256(rng.bytes(32)).hexdigest()))
            curves.setdefault(role, {"std": [None] * layers})["std"][layer] = std
        for role in ("attn.q", "attn.k"):
            proj[slot_key(role, layer, None)] = {
                "dims": [d, PROJ_DIM], "values": encode(rng.standard_normal((d, PROJ_DIM)))}
    vectors = {r: [(1.0 + 0.1 * rng.standard_normal(d)).tolist() for _ in range(layers)]
               for r in ("norm.attn", "norm.mlp")}
    tokens = [f"token-{seed}-{i}" for i in range(EMBED_TOKENS)]
    emb = embedding_entry(tokens, rng.standard_normal((EMBED_TOKENS, d)) * 0.02)
    return Fingerprint(model=ModelInfo(reference=f"synthetic-d{d}-L{layers}", kind="synthetic"),
                       architecture=arch, tensors=tensors, curves=curves, vectors=vectors,
                       sketches={"version": SKETCH_VERSION, "matrix": matrix,
                                 "projection": proj, "embedding": emb})
