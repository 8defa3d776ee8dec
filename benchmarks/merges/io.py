"""Read and write merge-benchmark models: Hugging Face directories of float32 safetensors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .recipes import State


def load_state(d: Path) -> State:
    return {k: np.asarray(v, dtype=np.float32) for k, v in
            load_file(str(d / "model.safetensors")).items()}


def save_state(state: State, config: dict, out: Path, tok_from: Path | None = None) -> Path:
    """A model directory: config.json (torch_dtype float32), model.safetensors and the
    tokenizer of ``tok_from``. ``np.ascontiguousarray``: safetensors' numpy writer stores
    non-contiguous arrays wrongly."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(config, torch_dtype="float32")
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()},
              str(out / "model.safetensors"))
    if tok_from is not None:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if (tok_from / f).exists():
                shutil.copyfile(tok_from / f, out / f)
    return out
