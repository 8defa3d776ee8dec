"""The models the peer benchmark compares, built once into ``benchmarks/peers/cache/models``.

Real models (shared/MODELS.md, installed as PyPI packages): SmolLM2-135M (GGUF Q4_1),
Gemma 3 270M (GGUF Q4_K_M), all-MiniLM-L6-v2 (safetensors F32). Variants of SmolLM2, built
with the lineage benchmark's builders (``benchmarks/lineage``: ``ggufio``, ``derive``,
``train``), not copies of them:

* ``smol-hf`` -- SmolLM2 dequantised from its GGUF into a Hugging Face llama directory (BF16),
  the reference of most derived pairs; ``smol-hf-f32`` the same stored in float32;
* ``smol-ft`` -- a real fine-tune: AdamW steps on offline text (``lineage.train``), BF16;
* ``smol-perm`` -- the fine-tune with MLP units and attention heads relabelled in every layer
  (function-preserving, ``derive.permute``);
* ``smol-drop`` -- the fine-tune with four layers removed (``derive.layer_drop``);
* ``smol-dus`` -- SOLAR-style depth up-scaling of the fine-tune, 30 -> 44 layers;
* ``smol-q4.gguf`` -- the fine-tune quantised to GGUF Q4_0 (``ggufio.write_gguf``);
* ``smol-moe`` -- sparse upcycling of the fine-tune into a Mixtral MoE with 8 experts, BF16;
* ``smol-indep`` -- SmolLM2's exact architecture, randomly initialised (another seed).

Each model is written into a temporary directory renamed into place, with a ``.recipe``
stamp, so an interrupted build is redone and a finished one is reused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE / "cache" / "models"
RECIPE = "1"
FT_STEPS = 6
MOE_EXPERTS = 8
DROP = [20, 22, 24, 26]
DUS_K = 8

#: (label, candidate, reference, truth)
PAIRS: list[tuple[str, str, str, str]] = [
    ("fine-tune vs base (BF16 / BF16)", "smol-ft", "smol-hf", "derived"),
    ("fine-tune vs the real GGUF original", "smol-ft", "smol.gguf", "derived"),
    ("permuted units/heads vs base", "smol-perm", "smol-hf", "derived"),
    ("layer drop 30 -> 26 vs base", "smol-drop", "smol-hf", "derived"),
    ("depth up-scaled 30 -> 44 vs base", "smol-dus", "smol-hf", "derived"),
    ("quantised copy (GGUF Q4_0) vs base", "smol-q4.gguf", "smol-hf", "derived"),
    ("MoE upcycle (8 experts, BF16) vs dense F32 base", "smol-moe", "smol-hf-f32", "derived"),
    ("independent (same config, re-init) vs base", "smol-indep", "smol-hf", "independent"),
    ("Gemma 3 270M vs SmolLM2 (real, GGUF)", "gemma3.gguf", "smol.gguf", "independent"),
    ("all-MiniLM-L6-v2 vs SmolLM2 (real)", "minilm", "smol-hf", "independent"),
]


def _once(name: str, make: Callable[[Path], None]) -> Path:
    out = MODELS / name
    if (out / ".recipe").is_file() and (out / ".recipe").read_text() == RECIPE:
        return out
    tmp = MODELS / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    make(tmp)
    (tmp / ".recipe").write_text(RECIPE)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _link(name: str, target: Path) -> Path:
    path = MODELS / name
    MODELS.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        if path.resolve() == target.resolve():
            return path
        path.unlink()
    path.symlink_to(target)
    return path


def model_path(name: str) -> Path:
    """Where a built model is (GGUF variants: the file inside their directory)."""
    p = MODELS / name
    if name.endswith(".gguf") and p.is_dir():
        return p / "model.gguf"
    return p


def build(log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build (or reuse) every model of :data:`PAIRS`; name -> path."""
    import numpy as np
    import torch
    from benchmarks.lineage import derive
    from benchmarks.lineage.bpe import Encoder
    from benchmarks.lineage.corpus import load_corpus
    from benchmarks.lineage.ggufio import read_gguf, write_gguf
    from benchmarks.lineage.ops import write_card
    from benchmarks.lineage.recipes import PROFILES
    from benchmarks.lineage.tiny_lm import CausalLM, load_model, save_model
    from benchmarks.lineage.train import train

    from modelprint import realmodels

    MODELS.mkdir(parents=True, exist_ok=True)
    smol = _link("smol.gguf", realmodels.smollm2_gguf())
    _link("gemma3.gguf", realmodels.gemma3_gguf())
    _link("minilm", realmodels.minilm_dir())
    cfg, state, enc = read_gguf(smol)

    def save(m: CausalLM, d: Path, name: str, dtype: str = "bfloat16") -> None:
        out = CausalLM(m.cfg.with_(dtype=dtype))
        out.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
        save_model(out, d)
        enc.save(d)
        write_card(d, name, out.cfg)

    def base() -> CausalLM:
        m = CausalLM(cfg)
        m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        return m

    log("peers: SmolLM2 -> HF (BF16, F32)")
    _once("smol-hf", lambda d: save(base(), d, "smol-hf"))
    _once("smol-hf-f32", lambda d: save(base(), d, "smol-hf-f32", "float32"))

    def finetune(d: Path) -> None:
        torch.set_num_threads(2)
        m = base()
        text = "".join(load_corpus(PROFILES["small"]["chars"]).texts["sft_a"])[:200_000]
        stream = np.asarray(enc.encode(text), dtype=np.int32)
        rec = train(m, stream, steps=FT_STEPS, lr=1e-4, seed=1, seq=128, batch=4)
        (d / "train.json").write_text(json.dumps(rec, default=str))
        save(m, d, "smol-ft")

    log(f"peers: fine-tune ({FT_STEPS} AdamW steps)")
    ft_dir = _once("smol-ft", finetune)

    def ft() -> CausalLM:
        return load_model(ft_dir)

    log("peers: permuted, layer-dropped, up-scaled, quantised, MoE, independent")
    _once("smol-perm", lambda d: save(derive.permute(ft(), seed=5, residual=False)[0], d,
                                      "smol-perm"))
    _once("smol-drop", lambda d: save(derive.layer_drop(ft(), DROP), d, "smol-drop"))
    _once("smol-dus", lambda d: save(derive.depth_upscale(ft(), DUS_K), d, "smol-dus"))

    def q4(d: Path) -> None:
        m = ft()
        st = {k: v.float().numpy() for k, v in m.hf_state().items()}
        write_gguf(m.cfg, st, Encoder.load(ft_dir / "tokenizer.json"), d / "model.gguf",
                   "Q4_0", "smol-q4")

    _once("smol-q4.gguf", q4)
    _once("smol-moe", lambda d: save(derive.moe_upcycle(ft(), MOE_EXPERTS, 2, seed=3), d,
                                     "smol-moe"))

    def indep(d: Path) -> None:
        m = CausalLM(cfg)
        m.init_weights(11)
        save(m, d, "smol-indep")

    _once("smol-indep", indep)
    names = {n for _, a, b, _ in PAIRS for n in (a, b)}
    return {n: model_path(n) for n in sorted(names)}


if __name__ == "__main__":
    for n, p in build().items():
        print(n, p)
