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

import pytest
import torch
from benchmarks.disguise import transforms as T
from benchmarks.lineage.bpe import Encoder
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig

from modelprint.audit import Engine, Target

pytestmark = pytest.mark.slow

CFG = LMConfig(family="llama", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128)

DISGUISES: dict[str, Callable[[T.Subject, int], T.Subject]] = {
    "rotation+fold+units": lambda s, seed: T.permute_units(T.rotate_orthogonal(s, seed),
                                                           seed + 1),
    "hadamard": T.rotate_hadamard,
    "heads": T.permute_heads,
    "updown": T.scale_updown,
    "vocab": T.permute_vocab,
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
    q, label = T.randomised_hadamard(576, 0)
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
