"""What the zoo contains, per profile: shapes, step budgets, models (as recipes) and labels.

A recipe is a JSON-able dict: ``op`` plus its arguments and ``parents``. The builder hashes a
recipe together with its parents' keys, the corpus fingerprint and the profile's training
constants, so changing any of them rebuilds exactly the affected models.

Profiles:
  full   >= 6 same-recipe bases per family mix, every derivation on a llama and a qwen2 base,
         SmolLM2 derivatives (real fine-tune, layer drop, GGUF) — < 1 h on 2 cores.
  small  the same kinds on one base per family, fewer steps — a few minutes.
  tiny   a handful of very small models for the test suite — seconds.
"""

from __future__ import annotations

from typing import Any

from .tiny_lm import LMConfig

Recipe = dict[str, Any]

SHAPES: dict[str, LMConfig] = {
    # llama-style, untied, stored F32
    "llama-s": LMConfig(family="llama", hidden=128, layers=4, heads=4, kv_heads=2,
                        head_dim=32, ffn=384),
    # qwen2-style: q/k/v biases, tied embeddings, stored BF16; 256-wide rows allow Q4_K
    "qwen2-m": LMConfig(family="qwen2", hidden=256, layers=4, heads=4, kv_heads=2,
                        head_dim=64, ffn=512, qkv_bias=True, tie=True, dtype="bfloat16"),
    # a second llama shape: deeper, wider, tied, BF16
    "llama-w": LMConfig(family="llama", hidden=192, layers=6, heads=6, kv_heads=2,
                        head_dim=32, ffn=512, tie=True, dtype="bfloat16"),
    # test-suite shapes
    "llama-t": LMConfig(family="llama", hidden=32, layers=2, heads=2, kv_heads=1,
                        head_dim=16, ffn=64),
    "qwen2-t": LMConfig(family="qwen2", hidden=256, layers=1, heads=2, kv_heads=1,
                        head_dim=32, ffn=256, qkv_bias=True, tie=True, dtype="bfloat16"),
}

PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "merges": 1791, "vocab_ext": 256, "seq": 128, "batch": 16, "eval_windows": 64,
        "chars": {"pretrain": 6_000_000, "eval": 400_000, "cpt": 3_000_000,
                  "sft_a": 1_500_000, "sft_b": 1_500_000},
        "bases": {"llama-s": 6, "qwen2-m": 4, "llama-w": 2},
        "calibration_seeds": {"llama-s": [3, 4, 5], "qwen2-m": [2, 3], "llama-w": [1]},
        "derive_from": ["llama-s", "qwen2-m"],
        "steps": {"pretrain": 500, "sft": 60, "cpt": 480, "dus": 150, "width": 100,
                  "moe": 120, "vocab": 100},
        "lr": {"pretrain": 3e-3, "sft": 5e-4, "cpt": 1e-3, "heal": 1e-3},
        "real": True, "smol_sft_steps": 24,
    },
    "small": {
        "merges": 1023, "vocab_ext": 128, "seq": 128, "batch": 8, "eval_windows": 32,
        "chars": {"pretrain": 2_000_000, "eval": 200_000, "cpt": 1_000_000,
                  "sft_a": 500_000, "sft_b": 500_000},
        "bases": {"llama-s": 3, "qwen2-m": 3},
        "calibration_seeds": {"llama-s": [2], "qwen2-m": [2]},
        "derive_from": ["llama-s", "qwen2-m"],
        "steps": {"pretrain": 220, "sft": 25, "cpt": 200, "dus": 50, "width": 40,
                  "moe": 40, "vocab": 40},
        "lr": {"pretrain": 3e-3, "sft": 5e-4, "cpt": 1e-3, "heal": 1e-3},
        "real": True, "smol_sft_steps": 4,
    },
    "tiny": {
        "merges": 255, "vocab_ext": 32, "seq": 32, "batch": 8, "eval_windows": 16,
        "chars": {"pretrain": 150_000, "eval": 30_000, "cpt": 60_000,
                  "sft_a": 40_000, "sft_b": 40_000},
        "bases": {"llama-t": 4, "qwen2-t": 1},
        "calibration_seeds": {"llama-t": [2, 3]},
        "derive_from": ["llama-t"],
        "extra": [{"name": "qwen2-t.seed0.gguf_q4_k", "op": "gguf", "kind": "gguf_q4_k",
                   "parents": ["qwen2-t.seed0"], "qtype": "Q4_K"}],
        "steps": {"pretrain": 80, "sft": 10, "cpt": 40, "dus": 10, "width": 10,
                  "moe": 10, "vocab": 10},
        "lr": {"pretrain": 1e-2, "sft": 1e-3, "cpt": 2e-3, "heal": 2e-3},
        "shape_lr": {"qwen2-t": 3e-3},
        "real": False, "smol_sft_steps": 0,
    },
}


def _train(p: dict[str, Any], split: str, kind: str, lr: str, seed: int) -> dict[str, Any]:
    return {"split": split, "steps": p["steps"][kind], "lr": p["lr"][lr], "seed": seed}


def derivatives(base: str, shape: str, p: dict[str, Any], seed: int) -> list[Recipe]:
    """Every derivation kind applied to one base (``seed`` varies the derivation's data)."""
    c = SHAPES[shape]
    s = 7000 + seed * 100
    gguf4 = "Q4_K" if c.hidden % 256 == 0 and c.ffn % 256 == 0 else "Q4_0"
    out: list[Recipe] = [
        {"name": f"{base}.sft_a", "op": "train", "kind": "sft", "parents": [base],
         "train": _train(p, "sft_a", "sft", "sft", s + 1)},
        {"name": f"{base}.sft_b", "op": "train", "kind": "sft", "parents": [base],
         "train": _train(p, "sft_b", "sft", "sft", s + 2)},
        {"name": f"{base}.merge", "op": "merge", "kind": "merge",
         "parents": [f"{base}.sft_a", f"{base}.sft_b"], "weight": 0.5},
        {"name": f"{base}.cpt", "op": "train", "kind": "cpt", "parents": [base],
         "train": _train(p, "cpt", "cpt", "cpt", s + 3)},
        {"name": f"{base}.layer_drop", "op": "layer_drop", "kind": "layer_drop",
         "parents": [base], "drop": [c.layers // 2]},
        {"name": f"{base}.dus", "op": "dus", "kind": "dus", "parents": [base],
         "k": max(1, c.layers // 4), "train": _train(p, "pretrain", "dus", "heal", s + 4)},
        {"name": f"{base}.width_prune", "op": "width_prune", "kind": "width_prune",
         "parents": [base], "hidden": c.hidden * 3 // 4, "ffn": c.ffn * 2 // 3,
         "train": _train(p, "pretrain", "width", "heal", s + 5)},
        {"name": f"{base}.moe", "op": "moe_upcycle", "kind": "moe_upcycle", "parents": [base],
         "experts": 4, "top_k": 2, "seed": s + 6,
         "train": _train(p, "pretrain", "moe", "heal", s + 6)},
        {"name": f"{base}.permute", "op": "permute", "kind": "permute", "parents": [base],
         "residual": False, "seed": s + 7},
        {"name": f"{base}.permute_residual", "op": "permute", "kind": "permute_residual",
         "parents": [base], "residual": True, "seed": s + 8},
        {"name": f"{base}.sft_a.permute_residual", "op": "permute",
         "kind": "permute_residual", "parents": [f"{base}.sft_a"], "residual": True,
         "seed": s + 10},
        {"name": f"{base}.gguf_q8_0", "op": "gguf", "kind": "gguf_q8_0", "parents": [base],
         "qtype": "Q8_0"},
        {"name": f"{base}.gguf_{gguf4.lower()}", "op": "gguf", "kind": f"gguf_{gguf4.lower()}",
         "parents": [base], "qtype": gguf4},
        {"name": f"{base}.vocab_ext", "op": "vocab_ext", "kind": "vocab_ext", "parents": [base],
         "new_tokens": p["vocab_ext"], "train": _train(p, "sft_a", "vocab", "heal", s + 9)},
    ]
    return out


def real_recipes(p: dict[str, Any]) -> list[Recipe]:
    """The real models of shared/MODELS.md and SmolLM2-135M derivatives made here."""
    out: list[Recipe] = [
        {"name": "real.smollm2", "op": "real", "kind": "real", "which": "smollm2"},
        {"name": "real.gemma3", "op": "real", "kind": "real", "which": "gemma3"},
        {"name": "real.minilm", "op": "real", "kind": "real", "which": "minilm"},
        {"name": "smollm2.hf", "op": "smol_hf", "kind": "gguf_dequant",
         "parents": ["real.smollm2"]},
        {"name": "smollm2.sft", "op": "smol_sft", "kind": "sft", "parents": ["smollm2.hf"],
         "train": {"split": "sft_a", "steps": p["smol_sft_steps"], "lr": 1e-4, "seed": 9001,
                   "batch": 4, "seq": 128}},
        {"name": "smollm2.layer_drop", "op": "layer_drop", "kind": "layer_drop",
         "parents": ["smollm2.hf"], "drop": [20, 22, 24, 26]},
        {"name": "smollm2.gguf_q8_0", "op": "gguf", "kind": "gguf_q8_0",
         "parents": ["smollm2.sft"], "qtype": "Q8_0"},
    ]
    return out


def zoo_recipes(profile: str) -> list[Recipe]:
    """Every model of a profile, parents before children."""
    p = PROFILES[profile]
    out: list[Recipe] = []
    for shape, n in p["bases"].items():
        for seed in range(n):
            out.append({"name": f"{shape}.seed{seed}", "op": "pretrain", "kind": "base",
                        "shape": shape, "index": seed, "init_seed": 1000 + seed, "parents": [],
                        "train": {"split": "pretrain", "steps": p["steps"]["pretrain"],
                                  "lr": p.get("shape_lr", {}).get(shape, p["lr"]["pretrain"]),
                                  "seed": 2000 + seed}})
    for i, shape in enumerate(p["derive_from"]):
        out.extend(derivatives(f"{shape}.seed0", shape, p, i))
    out.extend(p.get("extra", []))
    if p["real"]:
        out.extend(real_recipes(p))
    return out
