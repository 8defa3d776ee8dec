"""Build the merge benchmark's models: parents made here, merges with known recipes.

Two families of parents (``python -m benchmarks.merges.build [--only zoo|smol]``):

* **zoo**: the lineage zoo's trained ``llama-s.seed0`` base (read from the lineage store,
  never written), three real short fine-tunes of it on disjoint text (``sft_a``, ``sft_b``,
  ``cpt`` splits), and the independently trained ``llama-s.seed1`` as the unrelated model;
* **smol**: SmolLM2-135M (the GGUF of MODELS.md, dequantised), three real short fine-tunes
  of it on disjoint text, and an unrelated model of the same shape (every tensor redrawn at
  random with the original's mean and std: what an independently initialised model is to
  it).

Every merge of :data:`CASES` is then written as a float32 safetensors directory with its
recipe in ``truth.json``. Everything lands in ``benchmarks/merges/cache/`` (git-ignored) and
is reused when present.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig
from benchmarks.lineage.train import train

from . import recipes as R
from .io import load_state, save_state

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
LINEAGE_STORE = HERE.parent / "lineage" / "cache" / "store"

#: Each case: (name, kind, parents, weights, extra). Parents are "A", "B", "C" (fine-tunes)
#: and "base"; every case is decomposed against its true parents plus "U" (unrelated).
CASES: list[dict[str, Any]] = [
    {"name": "linear_50_50", "method": "linear", "parents": ["A", "B"], "weights": [0.5, 0.5]},
    {"name": "linear_70_30", "method": "linear", "parents": ["A", "B"], "weights": [0.7, 0.3]},
    {"name": "linear_20_80", "method": "linear", "parents": ["A", "B"], "weights": [0.2, 0.8]},
    {"name": "linear3_50_30_20", "method": "linear", "parents": ["A", "B", "C"],
     "weights": [0.5, 0.3, 0.2]},
    {"name": "linear3_20_20_60", "method": "linear", "parents": ["A", "B", "C"],
     "weights": [0.2, 0.2, 0.6]},
    {"name": "slerp_t30", "method": "slerp", "parents": ["A", "B"], "weights": [0.7, 0.3]},
    {"name": "slerp_t62", "method": "slerp", "parents": ["A", "B"], "weights": [0.38, 0.62]},
    {"name": "slerp_base_t40", "method": "slerp", "parents": ["base", "A"],
     "weights": [0.6, 0.4]},
    {"name": "task_60_80", "method": "task_arithmetic", "parents": ["A", "B"],
     "weights": [0.6, 0.8], "base": True},
    {"name": "task3_50_50_50", "method": "task_arithmetic", "parents": ["A", "B", "C"],
     "weights": [0.5, 0.5, 0.5], "base": True},
    {"name": "ties_60_40_d50", "method": "ties", "parents": ["A", "B"], "weights": [0.6, 0.4],
     "density": 0.5, "base": True},
    {"name": "ties_50_50_d30", "method": "ties", "parents": ["A", "B"], "weights": [0.5, 0.5],
     "density": 0.3, "base": True},
    {"name": "ties3_40_30_30_d50", "method": "ties", "parents": ["A", "B", "C"],
     "weights": [0.4, 0.3, 0.3], "density": 0.5, "base": True},
    {"name": "dare_ties_60_40_d50", "method": "dare_ties", "parents": ["A", "B"],
     "weights": [0.6, 0.4], "density": 0.5, "base": True},
    {"name": "dare_linear_30_70_d70", "method": "dare_linear", "parents": ["A", "B"],
     "weights": [0.3, 0.7], "density": 0.7, "base": True},
    {"name": "gradient_linear", "method": "linear", "parents": ["A", "B"],
     "weights": "gradient"},
    {"name": "gradient_slerp", "method": "slerp", "parents": ["A", "B"],
     "weights": "gradient"},
    {"name": "linear_60_40_then_ft", "method": "linear", "parents": ["A", "B"],
     "weights": [0.6, 0.4], "then_train": "short"},
    {"name": "linear_60_40_then_long_ft", "method": "linear", "parents": ["A", "B"],
     "weights": [0.6, 0.4], "then_train": "long"},
]

#: Training after merging: (steps zoo, steps SmolLM2); the parents had 60 and 8.
AFTER_STEPS = {"short": (30, 4), "long": (240, 16)}


def gradient(layers: int) -> tuple[list[float], list[float]]:
    """Per-layer weights of A (0.9 -> 0.1 over depth) and B (the rest)."""
    a = [round(0.9 - 0.8 * i / max(layers - 1, 1), 4) for i in range(layers)]
    return a, [round(1 - x, 4) for x in a]


def _finetune(state: R.State, cfg: LMConfig, stream: np.ndarray, *, steps: int, lr: float,
              seed: int, batch: int, seq: int) -> tuple[R.State, dict[str, Any]]:
    model = CausalLM(cfg.with_(dtype="float32"))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()},
                          strict=False)
    rec = train(model, stream, steps=steps, lr=lr, seed=seed, seq=seq, batch=batch)
    return {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()
            if k in state}, rec


def _unrelated(state: R.State, seed: int) -> R.State:
    rng = np.random.default_rng(seed)
    return {k: (v.mean() + v.std() * rng.standard_normal(v.shape)).astype(np.float32)
            for k, v in state.items()}


def _family_zoo(log: Any) -> tuple[dict[str, Path], dict[str, Any], int]:
    out = CACHE / "zoo"
    models = LINEAGE_STORE / "models"
    base_dir = next(models.glob("llama-s.seed0-*/zoo.json")).parent
    other_dir = next(models.glob("llama-s.seed1-*/zoo.json")).parent
    tokens = next(LINEAGE_STORE.glob("tokens-*/sft_a.npy")).parent
    cfg_hf = json.loads((base_dir / "config.json").read_text())
    cfg = LMConfig.from_hf(cfg_hf)
    base = load_state(base_dir)
    paths = {"base": base_dir, "U": other_dir}
    for name, split, seed in (("A", "sft_a", 1), ("B", "sft_b", 2), ("C", "cpt", 3)):
        d = out / name
        if not (d / "model.safetensors").exists():
            st, rec = _finetune(base, cfg, np.load(tokens / f"{split}.npy"), steps=60,
                                lr=1e-3, seed=seed, batch=16, seq=128)
            save_state(st, cfg_hf, d, base_dir)
            (d / "train.json").write_text(json.dumps(rec, indent=1) + "\n")
            log(f"zoo: fine-tuned {name} on {split}")
        paths[name] = d
    return paths, cfg_hf, cfg.layers


def _family_smol(log: Any) -> tuple[dict[str, Path], dict[str, Any], int]:
    from benchmarks.lineage.corpus import load_corpus
    from benchmarks.lineage.ggufio import read_gguf
    from benchmarks.lineage.recipes import PROFILES

    from modelprint.realmodels import smollm2_gguf

    out = CACHE / "smol"
    cfg, state, enc = read_gguf(smollm2_gguf())
    cfg = cfg.with_(dtype="float32")
    cfg_hf = cfg.to_hf()
    paths: dict[str, Path] = {}
    base_dir = out / "base"
    if not (base_dir / "model.safetensors").exists():
        save_state(state, cfg_hf, base_dir)
        enc.save(base_dir)
    paths["base"] = base_dir
    corpus = None
    for name, split, seed in (("A", "sft_a", 1), ("B", "sft_b", 2), ("C", "cpt", 3)):
        d = out / name
        if not (d / "model.safetensors").exists():
            if corpus is None:
                corpus = load_corpus(PROFILES["small"]["chars"])
            text = "".join(corpus.texts[split])[:60_000]
            stream = np.asarray(enc.encode(text), dtype=np.int32)
            st, rec = _finetune(state, cfg, stream, steps=8, lr=2e-4, seed=seed, batch=4,
                                seq=128)
            save_state(st, cfg_hf, d, base_dir)
            (d / "train.json").write_text(json.dumps(rec, indent=1) + "\n")
            log(f"smol: fine-tuned {name} on {split} ({rec['train_seconds']} s)")
        paths[name] = d
    u = out / "U"
    if not (u / "model.safetensors").exists():
        save_state(_unrelated(state, 7), cfg_hf, u, base_dir)
    paths["U"] = u
    return paths, cfg_hf, cfg.layers


def _merge(case: dict[str, Any], states: dict[str, R.State], layers: int
           ) -> tuple[R.State, dict[str, Any]]:
    ps = [states[p] for p in case["parents"]]
    truth: dict[str, Any] = dict(case)
    w = case["weights"]
    if w == "gradient":
        ga, gb = gradient(layers)
        truth["per_layer"] = [[a, b] for a, b in zip(ga, gb, strict=True)]
        w = [ga, gb]
    m = case["method"]
    if m == "linear":
        st = R.linear(ps, w)
    elif m == "slerp":
        st = R.slerp(ps[0], ps[1], w[1])
        truth["lerped_fraction"] = R.lerped_fraction(ps[0], ps[1])
    elif m == "task_arithmetic":
        st = R.task_arithmetic(states["base"], ps, w)
    else:
        st = R.sparse_merge(states["base"], ps, w, case["density"], m, seed=17)
    return st, truth


def build(family: str, log: Any = print) -> dict[str, Any]:
    """Build (or reuse) one family; returns its manifest (paths and truths)."""
    t0 = time.time()
    paths, cfg_hf, layers = (_family_zoo if family == "zoo" else _family_smol)(log)
    out = CACHE / family
    states: dict[str, R.State] | None = None
    cases = {}
    tok = paths["base"]
    for case in CASES:
        d = out / "merges" / case["name"]
        if not (d / "truth.json").exists():
            if states is None:
                states = {k: load_state(v) for k, v in paths.items() if k != "U"}
            st, truth = _merge(case, states, layers)
            if case.get("then_train"):
                st = _perturb_by_training(st, family, cfg_hf, case["then_train"])
            save_state(st, cfg_hf, d, tok)
            (d / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
            log(f"{family}: merged {case['name']}")
        truth = json.loads((d / "truth.json").read_text())
        if case["method"] == "slerp" and "lerped_fraction" not in truth:
            states = states or {k: load_state(v) for k, v in paths.items() if k != "U"}
            ps = [states[p] for p in case["parents"]]
            truth["lerped_fraction"] = R.lerped_fraction(ps[0], ps[1])
            (d / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        cases[case["name"]] = {"path": str(d), "truth": truth}
    manifest = {"family": family, "layers": layers, "cases": cases,
                "models": {k: str(v) for k, v in paths.items()},
                "seconds": round(time.time() - t0, 1)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _perturb_by_training(st: R.State, family: str, cfg_hf: dict[str, Any], how: str
                         ) -> R.State:
    """"A merge then fine-tuned": real training steps on text no parent saw."""
    cfg = LMConfig.from_hf(cfg_hf)
    zoo_steps, smol_steps = AFTER_STEPS[how]
    if family == "zoo":
        tokens = next(LINEAGE_STORE.glob("tokens-*/eval.npy")).parent
        out, _ = _finetune(st, cfg, np.load(tokens / "eval.npy"), steps=zoo_steps, lr=5e-4, seed=9,
                           batch=16, seq=128)
        return out
    from benchmarks.lineage.bpe import Encoder
    from benchmarks.lineage.corpus import load_corpus
    from benchmarks.lineage.recipes import PROFILES

    enc = Encoder.load(CACHE / "smol" / "base" / "tokenizer.json")
    text = "".join(load_corpus(PROFILES["small"]["chars"]).texts["eval"])[:60_000]
    stream = np.asarray(enc.encode(text), dtype=np.int32)
    out, _ = _finetune(st, cfg, stream, steps=smol_steps, lr=2e-4, seed=9, batch=4, seq=128)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("zoo", "smol"), action="append")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    for fam in a.only or ["zoo", "smol"]:
        build(fam, log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
