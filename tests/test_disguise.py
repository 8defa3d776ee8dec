"""Disguised copies (issue 12): a fast subset of ``benchmarks/disguise``.

A small llama-style model with uneven norm gains is disguised by function-preserving
re-parameterisations (residual rotation with folded norms plus permuted hidden units, head
permutation, up/down rescaling, vocabulary relabelling). Each disguise must compute the same
logits as the original (a torch forward pass), and the engine must still call the copy
``derived`` on decisive evidence, while an independently initialised model of the same shape,
disguised the same way, is not called derived.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmarks.disguise import bert as B
from benchmarks.disguise import gemma3 as G
from benchmarks.disguise import reparam
from benchmarks.disguise import transforms as T
from benchmarks.lineage.bpe import Encoder
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig

from modelprint.audit import Engine, Target

pytestmark = pytest.mark.slow

CFG = LMConfig(family="llama", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128)

_REG = T.registry([], 0)
DISGUISES: dict[str, Callable[[T.Subject, int], T.Subject]] = {
    "rotation+fold+units": _REG["rotation+units"],
    "hadamard": _REG["rotate_hadamard"],
    "heads": _REG["permute_heads"],
    "updown": _REG["scale_updown"],
    "vocab": _REG["permute_vocab"],
}


def base(seed: int) -> T.Subject:
    """Random weights of a trained model's scale, with pre-norm gains far from 1 (so folding
    them is not a no-op) and the byte-level tokenizer the zoo's BPE starts from."""
    enc = Encoder([])
    m = CausalLM(CFG.with_(vocab=len(enc), bos=enc.eot, eos=enc.eot))
    m.init_weights(seed, std=0.05)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name:
                p.copy_((1.0 + 0.4 * torch.randn(p.shape, generator=g)).abs())
    return T.Subject.base(m.double(), enc)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("disguise")
    out = {"base": T.save(base(0), root / "base", "base", "float32"),
           "other": T.save(base(7), root / "other", "other", "float32")}
    for name, fn in DISGUISES.items():
        out[name] = T.save(fn(base(0), 11), root / name, name, "float32")
        out[f"other.{name}"] = T.save(fn(base(7), 11), root / f"other.{name}",
                                      f"other.{name}", "float32")
    return out


IDS = torch.randint(0, 257, (2, 24), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("name", sorted(DISGUISES))
def test_disguise_preserves_the_function(name: str, tmp_path: Path) -> None:
    b = base(0)
    d = DISGUISES[name](b, 11)
    assert T.logit_diff(b, d, IDS)["relative"] < 1e-10              # the arithmetic
    stored = T.load_saved(d, T.save(d, tmp_path / name, name, "float32"))
    assert T.logit_diff(b, stored, IDS, torch.float32)["relative"] < 1e-3   # the file


def test_rotation_changes_every_stored_matrix() -> None:
    """The disguise is real: no residual-facing matrix keeps its values."""
    b = base(0)
    d = T.rotate_orthogonal(b, 11)
    before, after = b.model.state_dict(), d.model.state_dict()
    for k in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
              "model.layers.1.mlp.down_proj.weight"):
        assert not torch.allclose(before[k], after[k], atol=1e-3)


def test_hadamard_of_smollm2_width_is_orthogonal() -> None:
    q, label = reparam.randomised_hadamard(576, 0)
    assert label == "H_576"
    assert torch.allclose(torch.from_numpy(q @ q.T), torch.eye(576, dtype=torch.float64),
                          atol=1e-12)


def _verdict(cand: Path, ref: Path) -> tuple[str, str]:
    return Engine(offline=True).pair(Target(str(cand)), Target(str(ref))).verdict()


@pytest.mark.parametrize("name", sorted(DISGUISES))
def test_disguised_copy_is_called_derived(models: dict[str, Path], name: str) -> None:
    verdict, reason = _verdict(models[name], models["base"])
    assert verdict == "derived", reason


@pytest.mark.parametrize("name", sorted(DISGUISES))
def test_disguised_independent_model_is_not_called_derived(models: dict[str, Path],
                                                           name: str) -> None:
    verdict, reason = _verdict(models[f"other.{name}"], models["base"])
    assert verdict != "derived", reason


def gemma_like(seed: int) -> tuple[dict, dict[str, np.ndarray], list[str]]:
    """A random Gemma 3-shaped model (sandwich norms, q/k norms, tied head), small."""
    cfg = {"hidden": 48, "layers": 6, "heads": 4, "kv_heads": 2, "head_dim": 16, "ffn": 96,
           "eps": 1e-6, "rope_global": 1e6, "rope_local": 1e4, "window": 512,
           "query_scalar": 16.0, "vocab": 300}
    rng = np.random.default_rng(seed)
    shapes = {"self_attn.q_proj.weight": (64, 48), "self_attn.k_proj.weight": (32, 48),
              "self_attn.v_proj.weight": (32, 48), "self_attn.o_proj.weight": (48, 64),
              "mlp.gate_proj.weight": (96, 48), "mlp.up_proj.weight": (96, 48),
              "mlp.down_proj.weight": (48, 96), "self_attn.q_norm.weight": (16,),
              "self_attn.k_norm.weight": (16,), "input_layernorm.weight": (48,),
              "post_attention_layernorm.weight": (48,),
              "pre_feedforward_layernorm.weight": (48,),
              "post_feedforward_layernorm.weight": (48,)}
    st = {"model.embed_tokens.weight": rng.normal(0, 0.1, (300, 48)).astype(np.float32),
          "model.norm.weight": (1 + 0.3 * rng.normal(size=48)).astype(np.float32)}
    for i in range(cfg["layers"]):
        for k, shp in shapes.items():
            w = 1 + 0.3 * rng.normal(size=shp) if len(shp) == 1 else rng.normal(0, 0.15, shp)
            st[f"model.layers.{i}.{k}"] = w.astype(np.float32)
    return cfg, st, [f"tok{i}" for i in range(300)]


@pytest.mark.parametrize("name", sorted(G.DISGUISES))
def test_gemma3_disguise_preserves_the_function(name: str, tmp_path: Path) -> None:
    """The norm-commuting disguises applied to the real Gemma 3 keep a Gemma 3 forward pass;
    the stored HF directory (gains as g - 1, BF16) reads back to the same function."""
    cfg, st, tok = gemma_like(0)
    new, new_tok = G.DISGUISES[name](cfg, st, tok, np.random.default_rng(5))
    assert new_tok != tok or any(not np.array_equal(new[k], st[k]) for k in st)
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(1))
    assert G.logit_diff(cfg, st, new, tok, new_tok, ids)["relative"] < 1e-5
    back = G.load_hf(G.save_hf(cfg, new, new_tok, tmp_path / name))
    assert G.logit_diff(cfg, st, back, tok, new_tok, ids)["relative"] < 3e-2   # BF16


def test_gemma3_rotation_is_not_function_preserving() -> None:
    """Why Gemma 3 gets permutations only: a residual rotation breaks its post-norms."""
    cfg, st, tok = gemma_like(0)
    q = reparam.random_orthogonal(48, 3).astype(np.float32)
    rot = {k: (v @ q if k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight",
                                      "gate_proj.weight", "up_proj.weight",
                                      "embed_tokens.weight"))
               else q.T @ v if k.endswith(("o_proj.weight", "down_proj.weight")) else v)
           for k, v in st.items()}
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(1))
    assert G.logit_diff(cfg, st, rot, tok, tok, ids)["relative"] > 1e-2


@pytest.fixture(scope="module")
def minilm() -> tuple[Path, dict, dict, list[str]]:
    from modelprint import realmodels

    src = realmodels.minilm_dir()
    cfg, st, tok = B.read(src)
    return src, cfg, st, tok


@pytest.mark.parametrize("name", ["permute_residual", "all"])
def test_bert_disguise_is_function_preserving_and_called_derived(
        minilm: tuple[Path, dict, dict, list[str]], name: str, tmp_path: Path) -> None:
    """The real all-MiniLM-L6-v2 (post-LN BERT) disguised by the transforms that commute with
    its LayerNorms -- one alone, and all of them at once so that no tensor stays as stored --
    computes the same token similarities and is called derived from the real model."""
    src, cfg, st, tok = minilm
    new, new_tok = B.DISGUISES[name](cfg, st, tok, np.random.default_rng(3))
    ids = torch.randint(1000, cfg["vocab"], (2, 16), generator=torch.Generator().manual_seed(2))
    assert B.hidden_diff(cfg, st, new, tok, new_tok, ids)["relative"] < 1e-8
    out = B.save(src, cfg, new, new_tok, tmp_path / name)
    assert B.hidden_diff(cfg, st, B.load_saved(out), tok, new_tok, ids)["relative"] < 1e-5
    js = Engine(offline=True).pair(Target(str(out)), Target(str(src)), expect=None).to_json()
    assert js["verdict"] == "derived", js["verdict_reason"]
    if name == "all":
        assert not js["checks"]["identity"]["indicates_derivation"]


def test_bert_rotation_is_not_function_preserving(
        minilm: tuple[Path, dict, dict, list[str]]) -> None:
    """Why BERT gets permutations only: a rotation of the stream breaks its post-LNs."""
    _, cfg, st, tok = minilm
    q = torch.from_numpy(reparam.random_orthogonal(cfg["hidden"], 3))
    rot = {k: (v @ q if v.ndim == 2 and v.shape[1] == cfg["hidden"] and "attention.output" not in k
               and not k.endswith("output.dense.weight") else v) for k, v in st.items()}
    ids = torch.randint(1000, cfg["vocab"], (1, 12), generator=torch.Generator().manual_seed(2))
    assert B.hidden_diff(cfg, st, rot, tok, tok, ids)["relative"] > 1e-2
