"""Per-layer re-parameterisations on Hugging Face-named tensors, shared by every family here.

tiny_lm's ``state_dict()`` keys are the HF names, and Gemma 3's HF names for attention and MLP
are the same (``model.layers.N.self_attn.q_proj.weight``, ``mlp.up_proj.weight``, ...), so one
implementation serves the llama / qwen2 disguises of ``transforms.py`` and the Gemma 3 ones of
``gemma3.py``. Each function takes float64 tensors and the model's shape (an
:class:`LMConfig`: only its widths are read) and returns a new dict; biases, where present,
move with their rows. Also the orthogonal matrices the rotations use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from benchmarks.lineage.tiny_lm import LMConfig

Tensors = dict[str, torch.Tensor]
Reparam = Callable[[Tensors, LMConfig, np.random.Generator], Tensors]


def tensor64(a: np.ndarray) -> torch.Tensor:
    """A float64 torch copy of a numpy array (the transforms work in float64)."""
    return torch.from_numpy(np.ascontiguousarray(a)).double()


def _attn(i: int) -> str:
    return f"model.layers.{i}.self_attn."


def _mlp(i: int) -> str:
    return f"model.layers.{i}.mlp."


# -- orthogonal matrices ------------------------------------------------------------------

def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """Haar-random orthogonal matrix: QR of a seeded Gaussian, columns sign-fixed by diag(R)
    (without the fix QR's sign convention biases the distribution)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return np.asarray(q * np.sign(np.diag(r)))


def _paley12() -> np.ndarray:
    """Hadamard matrix of order 12 by Paley's first construction (q = 11 = 3 mod 4)."""
    q = 11
    residues = {(x * x) % q for x in range(1, q)}
    chi = np.array([0] + [1 if x in residues else -1 for x in range(1, q)])
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = [[chi[(j - i) % q] for j in range(q)] for i in range(q)]
    return np.eye(q + 1, dtype=np.int64) + s


def hadamard(n: int) -> np.ndarray | None:
    """A +-1 Hadamard matrix of order n (H H^T = n I) for n = 2^k or 12^j 2^k (Sylvester,
    Kronecker with Paley's H_12 -- SmolLM2's 576 = 12 * 12 * 4), else None."""
    if n == 1:
        return np.ones((1, 1), dtype=np.int64)
    if n % 2 == 0 and (n & (n - 1)) == 0:
        h = hadamard(n // 2)
        assert h is not None
        return np.block([[h, h], [h, -h]])
    if n % 12 == 0:
        rest = hadamard(n // 12)
        return None if rest is None else np.kron(_paley12(), rest)
    return None


def randomised_hadamard(d: int, seed: int) -> tuple[np.ndarray, str]:
    """QuaRot's rotation ``H diag(s) / sqrt(d)`` with random signs ``s``.

    When no Hadamard matrix of order d is built here (d not 2^k 12^j) the rotation is
    block-diagonal with Hadamard blocks of the largest order dividing d that is built --
    still orthogonal, but it mixes dimensions only within a block (QuaRot uses Kronecker
    products with a table of known orders for such widths). Returns the matrix and a label.
    """
    h = hadamard(d)
    label = f"H_{d}"
    if h is None:
        b = max(k for k in range(1, d + 1) if d % k == 0 and hadamard(k) is not None)
        h = np.kron(np.eye(d // b), hadamard(b))
        label = f"block-diagonal {d // b} x H_{b}"
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=d)
    return h.astype(np.float64) * signs[None, :] / np.sqrt(float(h[0] @ h[0])), label


def well_conditioned(rng: np.random.Generator, n: int) -> np.ndarray:
    """U diag(exp(N(0, 0.5))) V with Haar U, V: invertible, condition number ~ e^2."""
    u = random_orthogonal(n, int(rng.integers(2**31)))
    v = random_orthogonal(n, int(rng.integers(2**31)))
    return np.asarray(u * np.exp(rng.normal(0.0, 0.5, size=n))[None, :] @ v)


# -- re-parameterisations ------------------------------------------------------------------

def _rows(st: Tensors, out: Tensors, prefix: str, rows: torch.Tensor) -> None:
    """Permute (or select) the rows of ``prefix.weight`` and of its bias if it has one."""
    out[prefix + ".weight"] = st[prefix + ".weight"][rows]
    if prefix + ".bias" in st:
        out[prefix + ".bias"] = st[prefix + ".bias"][rows]


def permute_units(st: Tensors, c: LMConfig, rng: np.random.Generator) -> Tensors:
    """Relabel the gated-MLP hidden units of every layer (gate/up rows, down columns)."""
    out = dict(st)
    for i in range(c.layers):
        m = _mlp(i)
        p = torch.from_numpy(rng.permutation(c.ffn))
        _rows(st, out, m + "gate_proj", p)
        _rows(st, out, m + "up_proj", p)
        out[m + "down_proj.weight"] = st[m + "down_proj.weight"][:, p]
    return out


def _head_rows(heads: np.ndarray, hd: int) -> torch.Tensor:
    return torch.from_numpy((heads[:, None] * hd + np.arange(hd)).ravel())


def permute_heads(st: Tensors, c: LMConfig, rng: np.random.Generator) -> Tensors:
    """Relabel KV groups (each moving with its query heads) and the query heads within each
    group: GQA pairs query head h with kv head h // rep, so only these relabellings keep the
    function."""
    out = dict(st)
    rep, hd = c.heads // c.kv_heads, c.head_dim
    for i in range(c.layers):
        a = _attn(i)
        groups = rng.permutation(c.kv_heads)
        qrows = _head_rows(np.concatenate([g * rep + rng.permutation(rep) for g in groups]), hd)
        krows = _head_rows(groups, hd)
        _rows(st, out, a + "q_proj", qrows)
        _rows(st, out, a + "k_proj", krows)
        _rows(st, out, a + "v_proj", krows)
        out[a + "o_proj.weight"] = st[a + "o_proj.weight"][:, qrows]
    return out


def _lognormal(rng: np.random.Generator, n: int, sigma: float = 0.7) -> torch.Tensor:
    return tensor64(np.exp(rng.normal(0.0, sigma, size=n)))


def _scale_rows(st: Tensors, out: Tensors, prefix: str, scale: torch.Tensor) -> None:
    out[prefix + ".weight"] = st[prefix + ".weight"] * scale[:, None]
    if prefix + ".bias" in st:
        out[prefix + ".bias"] = st[prefix + ".bias"] * scale


def scale_qk(st: Tensors, c: LMConfig, rng: np.random.Generator) -> Tensors:
    """q * s, k / s per KV group (one s for a kv head and every query head reading it): the
    scores q.k are unchanged, and a scalar commutes with RoPE's per-pair rotations (and is
    removed outright by a per-head q/k norm)."""
    out = dict(st)
    rep, hd = c.heads // c.kv_heads, c.head_dim
    for i in range(c.layers):
        sg = _lognormal(rng, c.kv_heads)
        _scale_rows(st, out, _attn(i) + "q_proj", sg.repeat_interleave(rep * hd))
        _scale_rows(st, out, _attn(i) + "k_proj", 1.0 / sg.repeat_interleave(hd))
    return out


def vo_maps(st: Tensors, c: LMConfig, rng: np.random.Generator) -> Tensors:
    """V_g -> M_g V_g (and its bias), O_h -> O_h M_g^-1 for every query head h of group g:
    attention mixes value vectors linearly, so any invertible M per kv head cancels."""
    out = dict(st)
    rep, hd = c.heads // c.kv_heads, c.head_dim
    for i in range(c.layers):
        a = _attn(i)
        v, o = st[a + "v_proj.weight"].clone(), st[a + "o_proj.weight"].clone()
        vb = st[a + "v_proj.bias"].clone() if a + "v_proj.bias" in st else None
        for g in range(c.kv_heads):
            mg = well_conditioned(rng, hd)
            rows = slice(g * hd, (g + 1) * hd)
            v[rows] = tensor64(mg) @ v[rows]
            if vb is not None:
                vb[rows] = tensor64(mg) @ vb[rows]
            inv = tensor64(np.linalg.inv(mg))
            for h in range(g * rep, (g + 1) * rep):
                o[:, h * hd:(h + 1) * hd] = o[:, h * hd:(h + 1) * hd] @ inv
        out[a + "v_proj.weight"], out[a + "o_proj.weight"] = v, o
        if vb is not None:
            out[a + "v_proj.bias"] = vb
    return out


def scale_updown(st: Tensors, c: LMConfig, rng: np.random.Generator) -> Tensors:
    """up * s, down / s per hidden unit (s > 0): act(gate) * up is linear in up."""
    out = dict(st)
    for i in range(c.layers):
        m = _mlp(i)
        sc = _lognormal(rng, c.ffn)
        _scale_rows(st, out, m + "up_proj", sc)
        out[m + "down_proj.weight"] = st[m + "down_proj.weight"] / sc[None, :]
    return out


#: The re-parameterisations both families share, by name.
SHARED: dict[str, Reparam] = {"permute_units": permute_units, "permute_heads": permute_heads,
                              "scale_qk": scale_qk, "vo_maps": vo_maps,
                              "scale_updown": scale_updown}
