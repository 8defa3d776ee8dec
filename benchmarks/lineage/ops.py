"""Build one zoo model from its recipe (runs inside a worker process).

Every op writes a directory in the content-addressed store: a Hugging Face model directory
(``config.json``, ``model.safetensors``, ``tokenizer.json``, ``README.md``) or a GGUF file,
plus ``zoo.json`` — the model's manifest entry, written last, which marks it complete.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import derive
from .bpe import Encoder, train_merges
from .corpus import eval_windows, load_corpus
from .ggufio import read_gguf, write_gguf
from .recipes import PROFILES, SHAPES, Recipe
from .tiny_lm import CausalLM, LMConfig, load_model, save_model
from .train import eval_loss, train

CARD = """---
license: apache-2.0
library_name: modelprint-lineage-zoo
tags:
- lineage-zoo
---
# {name}

A small causal language model from the modelprint lineage benchmark zoo
({family}, {layers} layers, hidden size {hidden}, vocabulary {vocab}).
Trained on CPU on offline text. This card deliberately does not name any parent model: the
benchmark measures what the weights alone reveal.
"""


def write_card(d: Path, name: str, cfg: LMConfig) -> None:
    (d / "README.md").write_text(CARD.format(name=name, family=cfg.family, layers=cfg.layers,
                                             hidden=cfg.hidden, vocab=cfg.vocab))


class Ctx:
    """What a worker needs: the store, profile constants, token streams, tokenizer."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.profile = PROFILES[data["profile"]]
        self.tok_dir = Path(data["tok_dir"])
        self.dirs = {k: Path(v) for k, v in data["dirs"].items()}
        self._streams: dict[str, np.ndarray] = {}

    def stream(self, split: str) -> np.ndarray:
        if split not in self._streams:
            self._streams[split] = np.load(self.data["streams"][split])
        return self._streams[split]

    def eval_set(self) -> np.ndarray:
        return eval_windows(self.stream("eval"), self.profile["seq"],
                            self.profile["eval_windows"])

    def encoder(self) -> Encoder:
        return Encoder.load(self.tok_dir / "tokenizer.json")


def _parent(ctx: Ctx, r: Recipe, i: int = 0) -> tuple[CausalLM, Path]:
    d = ctx.dirs[r["parents"][i]]
    return load_model(d), d


def _train(ctx: Ctx, model: CausalLM, r: Recipe, stream: np.ndarray | None = None,
           evals: np.ndarray | None = None) -> dict[str, Any]:
    t = r["train"]
    p = ctx.profile
    return train(model, ctx.stream(t["split"]) if stream is None else stream,
                 steps=t["steps"], lr=t["lr"], seed=t["seed"], seq=t.get("seq", p["seq"]),
                 batch=t.get("batch", p["batch"]),
                 eval_windows=ctx.eval_set() if evals is None else evals)


def _save(model: CausalLM, out: Path, name: str, tok_from: Path) -> None:
    save_model(model, out)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (tok_from / f).exists() and tok_from.resolve() != out.resolve():
            shutil.copyfile(tok_from / f, out / f)
    write_card(out, name, model.cfg)


def build(r: Recipe, ctx_data: dict[str, Any], out: Path, threads: int) -> dict[str, Any]:
    """Build recipe ``r`` into ``out`` (a fresh directory); return its manifest entry."""
    torch.set_num_threads(threads)
    ctx = Ctx(ctx_data)
    t0, c0 = time.time(), time.process_time()
    out.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {"name": r["name"], "kind": r["kind"], "recipe": r,
                             "parents": r.get("parents", []), "format": "hf", "file": ""}
    op = r["op"]
    model: CausalLM | None = None
    tok_from = ctx.tok_dir
    if op == "pretrain":
        enc = ctx.encoder()
        cfg = SHAPES[r["shape"]].with_(vocab=len(enc), bos=enc.eot, eos=enc.eot)
        model = CausalLM(cfg)
        model.init_weights(r["init_seed"])
        entry["losses"] = _train(ctx, model, r)
        entry["unigram_baseline"] = ctx.data["unigram_baseline"]
    elif op == "train":
        model, _ = _parent(ctx, r)
        entry["losses"] = _train(ctx, model, r)
    elif op == "merge":
        a, _ = _parent(ctx, r, 0)
        b, _ = _parent(ctx, r, 1)
        model = derive.linear_merge(a, b, r["weight"])
    elif op == "layer_drop":
        parent, tok_from = _parent(ctx, r)
        model = derive.layer_drop(parent, r["drop"])
    elif op == "dus":
        parent, _ = _parent(ctx, r)
        model = derive.depth_upscale(parent, r["k"])
        entry["losses"] = _train(ctx, model, r)
    elif op == "width_prune":
        parent, _ = _parent(ctx, r)
        calib = torch.from_numpy(ctx.eval_set()[:8])
        model = derive.width_prune(parent, r["hidden"], r["ffn"], calib)
        entry["losses"] = _train(ctx, model, r)
    elif op == "moe_upcycle":
        parent, _ = _parent(ctx, r)
        model = derive.moe_upcycle(parent, r["experts"], r["top_k"], r["seed"])
        entry["losses"] = _train(ctx, model, r)
    elif op == "permute":
        parent, _ = _parent(ctx, r)
        model, record = derive.permute(parent, r["seed"], r["residual"])
        entry["function_check"] = _same_function(parent, model, ctx.eval_set()[:4])
        (out / "permutation.json").write_text(json.dumps(record))
    elif op == "vocab_ext":
        model, tok_from = _vocab_ext(ctx, r, out, entry)
    elif op == "gguf":
        _gguf(ctx, r, out, entry)
    elif op == "smol_hf":
        cfg, state, enc = read_gguf(Path(ctx.data["real_paths"]["real.smollm2"]))
        model = CausalLM(cfg.with_(dtype="bfloat16"))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        enc.save(out)
        tok_from = out
    elif op == "smol_sft":
        model, tok_from = _parent(ctx, r)
        enc = Encoder.load(tok_from / "tokenizer.json")
        corpus = load_corpus(ctx.profile["chars"])
        text = "".join(corpus.texts[r["train"]["split"]])[:400_000]
        stream = np.asarray(enc.encode(text), dtype=np.int32)
        evals = eval_windows(stream[-20_000:], 128, 4)
        entry["losses"] = _train(ctx, model, r, stream=stream[:-20_000], evals=evals)
    else:
        raise ValueError(f"unknown op {op!r}")
    if model is not None:
        _save(model, out, r["name"], tok_from)
        entry["config"] = model.cfg.to_hf()
        if model.cfg.vocab >= ctx.data["vocab"] and not r["name"].startswith("smollm2"):
            entry["eval_loss"] = round(eval_loss(model, ctx.eval_set()), 4)
    entry["build_seconds"] = round(time.time() - t0, 1)
    entry["cpu_seconds"] = round(time.process_time() - c0, 1)
    (out / "zoo.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    return entry


@torch.no_grad()
def _same_function(a: CausalLM, b: CausalLM, windows: np.ndarray) -> dict[str, Any]:
    """Logits of a permuted copy must equal the parent's (up to float rounding)."""
    ids = torch.from_numpy(windows)
    la, lb = a(ids), b(ids)
    diff = float((la - lb).abs().max())
    scale = float(la.abs().max())
    return {"max_abs_logit_diff": diff, "max_abs_logit": scale,
            "equal": bool(diff <= 1e-4 * max(1.0, scale))}


def _vocab_ext(ctx: Ctx, r: Recipe, out: Path,
               entry: dict[str, Any]) -> tuple[CausalLM, Path]:
    parent, _ = _parent(ctx, r)
    old = ctx.encoder()
    corpus = load_corpus(ctx.profile["chars"])
    texts = corpus.texts[r["train"]["split"]]
    extra = train_merges(texts, r["new_tokens"], start=old.merges)
    vocab = dict(old.vocab)
    for a, b in extra:
        vocab.setdefault(a + b, len(vocab))
    new = Encoder(old.merges + extra, vocab)
    new.save(out)
    stream = np.asarray(new.encode("\n".join(texts)), dtype=np.int32)
    model = derive.extend_vocab(parent, old, new)
    entry["new_tokens"] = len(new) - len(old)
    entry["losses"] = _train(ctx, model, r, stream=stream)
    return model, out


def _gguf(ctx: Ctx, r: Recipe, out: Path, entry: dict[str, Any]) -> None:
    parent, pdir = _parent(ctx, r)
    enc = Encoder.load(pdir / "tokenizer.json")
    state = {k: v.float().numpy() for k, v in parent.hf_state().items()}
    path = out / "model.gguf"
    used = write_gguf(parent.cfg, state, enc, path, r["qtype"], r["name"])
    _, back, _ = read_gguf(path)
    num = sum(float(((back[k] - v) ** 2).sum()) for k, v in state.items() if v.ndim == 2)
    den = sum(float((v ** 2).sum()) for v in state.values() if v.ndim == 2)
    entry.update(format="gguf", file=path.name, tensor_types=used,
                 relative_rms_error=round((num / den) ** 0.5, 5))
    if not r["name"].startswith("smollm2"):
        model = CausalLM(parent.cfg)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
        entry["eval_loss"] = round(eval_loss(model, ctx.eval_set()), 4)
        entry["config"] = parent.cfg.to_hf()
