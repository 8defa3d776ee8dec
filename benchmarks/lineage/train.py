"""AdamW training with warm-up and cosine decay: the one loop every zoo model goes through.

Deterministic on CPU given the seed (torch's CPU kernels are deterministic for these ops at
a fixed thread count; the builder fixes one thread per worker).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from .corpus import Batches
from .tiny_lm import CausalLM


@torch.no_grad()
def eval_loss(model: CausalLM, windows: np.ndarray, batch: int = 16) -> float:
    """Mean next-token cross-entropy (nats) over fixed windows."""
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(windows), batch):
        ids = torch.from_numpy(windows[i:i + batch])
        total += float(model.loss(ids)) * len(ids)
        n += len(ids)
    model.train()
    return total / n


def train(model: CausalLM, stream: np.ndarray, *, steps: int, lr: float, seed: int, seq: int,
          batch: int, eval_windows: np.ndarray | None = None, warmup: int | None = None,
          weight_decay: float = 0.1, min_lr_frac: float = 0.1) -> dict[str, Any]:
    """Train in place; return the loss record for the manifest."""
    torch.manual_seed(seed)
    rec: dict[str, Any] = {"steps": steps, "lr": lr, "batch": batch, "seq": seq,
                           "tokens": steps * batch * seq, "data_seed": seed}
    if eval_windows is not None:
        rec["eval_loss_before"] = round(eval_loss(model, eval_windows), 4)
    if steps == 0:
        rec["eval_loss"] = rec.get("eval_loss_before")
        return rec
    warm = warmup if warmup is not None else max(1, steps // 20)
    decay = [p for n, p in model.named_parameters() if p.ndim == 2]
    other = [p for n, p in model.named_parameters() if p.ndim != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": other, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(s: int) -> float:
        if s < warm:
            return lr * (s + 1) / warm
        t = (s - warm) / max(1, steps - warm)
        return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))

    data = Batches(stream, seq, batch, seed)
    losses: list[float] = []
    t0 = time.time()
    model.train()
    for s in range(steps):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(s)
        loss = model.loss(torch.from_numpy(data.next()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    k = max(1, steps // 10)
    rec["train_loss_first"] = round(float(np.mean(losses[:k])), 4)
    rec["train_loss_last"] = round(float(np.mean(losses[-k:])), 4)
    rec["train_seconds"] = round(time.time() - t0, 1)
    if eval_windows is not None:
        rec["eval_loss"] = round(eval_loss(model, eval_windows), 4)
    return rec
