"""``modelprint identify --weights`` (issue 13): library entries compared on their weights.

A library stores fingerprints, whose sketches are sub-matrices sampled at fixed positions: a
fine-tune whose residual stream was permuted hides from them. With ``--weights`` the best
entries are compared on the weights they were built from, when those are still at hand and
unchanged (every tensor hash equal to the entry's); otherwise on the stored fingerprint, with
the reason in the JSON. The models are tiny real safetensors folders written by the lineage
benchmark's builders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from benchmarks.disguise import transforms as T
from benchmarks.lineage.bpe import Encoder
from benchmarks.lineage.derive import permute
from benchmarks.lineage.tiny_lm import CausalLM, LMConfig

from modelprint.cli import main

pytestmark = pytest.mark.slow

CFG = LMConfig(family="llama", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16, ffn=128)


def _base(enc: Encoder, seed: int) -> CausalLM:
    m = CausalLM(CFG.with_(vocab=len(enc), bos=enc.eot, eos=enc.eot))
    m.init_weights(seed, std=0.05)
    return m


def _tuned_and_permuted(m: CausalLM) -> CausalLM:
    """A fine-tune stand-in (noise of 0.2 x each tensor's std), its residual stream, hidden
    units and heads then permuted: the same function as the noisy model, other coordinates."""
    ft = CausalLM(m.cfg)
    ft.load_state_dict(m.state_dict())
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(0.2 * p.std() * torch.randn(p.shape, generator=g))
    return permute(ft, 3, residual=True)[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("idw")
    enc = Encoder([])
    base = _base(enc, 0)
    return {
        "base": T.save(T.Subject.base(base, enc), root / "base", "base", "float32"),
        "other": T.save(T.Subject.base(_base(enc, 7), enc), root / "other", "other", "float32"),
        "disguised": T.save(T.Subject.base(_tuned_and_permuted(base), enc), root / "disguised",
                            "disguised", "float32"),
    }


def _library(tmp_path: Path, models: dict[str, Path]) -> tuple[Path, dict[str, Path]]:
    """A library built from copies of base and other (so a test may change or delete them)."""
    here = {n: shutil.copytree(models[n], tmp_path / n) for n in ("base", "other")}
    lib = tmp_path / "lib"
    assert main(["library", "-L", str(lib), "add", str(here["base"]), str(here["other"])]) == 0
    return lib, here


def _identify(tmp_path: Path, lib: Path, candidate: Path, *extra: str) -> tuple[int, Any]:
    out = tmp_path / "id.json"
    code = main(["identify", str(candidate), "-L", str(lib), "--json", str(out), *extra])
    return code, {m["name"]: m for m in json.loads(out.read_text())["library"][0]["matches"]}


def test_weights_find_the_parent_of_a_residual_permuted_fine_tune(
        tmp_path: Path, models: dict[str, Path]) -> None:
    lib, _ = _library(tmp_path, models)
    _, plain = _identify(tmp_path, lib, models["disguised"])
    assert plain["base"]["compared_on"] == "fingerprint"   # off by default
    code, matches = _identify(tmp_path, lib, models["disguised"], "--weights")
    assert code == 1
    base, other = matches["base"], matches["other"]
    assert base["compared_on"] == other["compared_on"] == "weights"
    assert base["compared_on_reason"] == ""
    assert base["verdict"] == "derived" and base["parent"]
    assert base["p_value"] < 1e-12
    assert other["verdict"] != "derived"


def test_changed_or_missing_weights_fall_back_to_the_fingerprint(
        tmp_path: Path, models: dict[str, Path]) -> None:
    """The folder an entry was built from may since hold another model, or be gone: then the
    stored fingerprint is used, as without ``--weights``, and the JSON says why."""
    lib, here = _library(tmp_path, models)
    for f in ("model.safetensors", "config.json"):
        shutil.copy(models["other"] / f, here["base"] / f)   # base's folder now holds other
    shutil.rmtree(here["other"])
    _, matches = _identify(tmp_path, lib, models["disguised"], "--weights")
    base, other = matches["base"], matches["other"]
    assert base["compared_on"] == other["compared_on"] == "fingerprint"
    assert "no longer holds the weights the entry was built from" in base["compared_on_reason"]
    assert "weights not at hand" in other["compared_on_reason"]
    # the fallback compares on the stored fingerprint: the same p-values as without the option
    _, plain = _identify(tmp_path, lib, models["disguised"])
    assert base["p_value"] == plain["base"]["p_value"]
