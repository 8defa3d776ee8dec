"""The derivations a disguise is composed with: a short fine-tune, a quantised GGUF round
trip, a layer drop, an MoE upcycle -- each reusing the lineage zoo's own code (``train.py``,
``ggufio.py``, ``derive.py``) on a :class:`transforms.Subject`."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks.lineage import derive
from benchmarks.lineage.ggufio import read_gguf, write_gguf
from benchmarks.lineage.tiny_lm import CausalLM
from benchmarks.lineage.train import train

from .transforms import Subject


@dataclass(frozen=True)
class Budget:
    """What a composition costs on one base: fine-tune steps/batch/lr, layers to drop, MoE."""

    ft_steps: int
    ft_batch: int
    ft_lr: float
    drop: tuple[int, ...]
    experts: int
    moe_steps: int
    gguf_qtype: str


def finetune(s: Subject, text: str, b: Budget, seed: int, steps: int | None = None
             ) -> tuple[Subject, dict[str, Any]]:
    """A short real fine-tune (AdamW, train.py) on ``text`` tokenised by the subject's own
    tokenizer (so a relabelled vocabulary trains on its own ids)."""
    m = copy.deepcopy(s.model).float()
    stream = np.asarray(s.enc.encode(text), dtype=np.int32)
    rec = train(m, stream[:-4096], steps=b.ft_steps if steps is None else steps, lr=b.ft_lr,
                seed=seed, seq=128, batch=b.ft_batch,
                eval_windows=stream[-4096:][: 8 * 129].reshape(8, 129).astype(np.int64))
    return s.derive(m.double(), "finetune"), rec


def gguf_round_trip(s: Subject, path: Path, qtype: str, name: str
                    ) -> tuple[Subject, dict[str, Any]]:
    """Write ``s`` as a quantised GGUF (:func:`ggufio.write_gguf`) and read it back; the GGUF
    file is the candidate unless the subject is stored fused (then the dequantised weights are
    saved in Phi-3 layout by the caller)."""
    state = {k: v.float().numpy() for k, v in s.model.hf_state().items()}
    used = write_gguf(s.model.cfg, state, s.enc, path, qtype, name)
    _, back, _ = read_gguf(path)
    num = sum(float(((back[k] - v) ** 2).sum()) for k, v in state.items() if v.ndim == 2)
    den = sum(float((v ** 2).sum()) for v in state.values() if v.ndim == 2)
    m = CausalLM(s.model.cfg).double()
    m.load_state_dict({k: torch.from_numpy(v).double() for k, v in back.items()})
    return s.derive(m, f"gguf_{qtype.lower()}"), {
        "tensor_types": used, "relative_rms_error": round((num / den) ** 0.5, 5)}


def layer_drop(s: Subject, b: Budget) -> Subject:
    return s.derive(derive.layer_drop(s.model, list(b.drop)), f"layer_drop{list(b.drop)}")


def moe_upcycle(s: Subject, b: Budget, text: str, seed: int) -> tuple[Subject, dict[str, Any]]:
    """Sparse upcycling (:func:`derive.moe_upcycle`: experts copied from the dense FFN, a new
    router), then ``moe_steps`` of training so the experts drift apart."""
    m = derive.moe_upcycle(copy.deepcopy(s.model).float(), b.experts, 2, seed)
    up = s.derive(m, f"moe_upcycle({b.experts} experts)")
    if not b.moe_steps:
        return up, {"steps": 0}
    out, rec = finetune(up, text, b, seed, steps=b.moe_steps)
    return out, rec
