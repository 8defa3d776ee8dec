"""A row-permutation null for aligned dot products, with an analytic p-value.

Under the null hypothesis of Zhu et al. (arXiv 2502.12292) -- the two models were trained from
independent random initialisations by a permutation-equivariant procedure -- the order of one
model's rows (hidden units, heads' channels, residual dimensions) relative to the other's is
uniformly random. For matrices ``A`` and ``B`` with rows ``a_i``, ``b_j`` and
``c_ij = <a_i, b_j>``, the aligned statistic ``T = sum_i c_ii`` is then one draw of the
linear permutation statistic ``sum_i c_{i, pi(i)}``, whose exact mean and variance are
(Hoeffding 1951, combinatorial CLT)::

    E[T]   = c..  * n                       (c.. = mean of all c_ij)
    Var[T] = sum_ij d_ij^2 / (n - 1),       d_ij = c_ij - c_i. - c_.j + c..

and ``z = (T - E[T]) / sqrt(Var[T])`` is asymptotically standard normal. The one-sided p-value
``P(Z >= z)`` is valid for large ``n`` whatever the training data were. A derived model's rows
line up with its parent's, so ``T`` sits tens to hundreds of standard deviations out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelprint._tails import norm_sf


@dataclass(frozen=True)
class PermutationTest:
    statistic: float      # T
    mean: float           # E[T] under the permutation null
    sd: float             # sqrt(Var[T])
    z: float
    p_value: float        # one-sided, upper tail
    n: int                # rows permuted


def row_permutation_test(a: np.ndarray, b: np.ndarray) -> PermutationTest | None:
    """Test whether rows of ``a`` and ``b`` are aligned beyond chance. None when undefined
    (fewer than 3 rows, or no variation under permutation, e.g. constant matrices)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] < 3:
        return None
    n = a.shape[0]
    c = a @ b.T
    t = float(np.trace(c))
    row = c.mean(axis=1, keepdims=True)
    col = c.mean(axis=0, keepdims=True)
    grand = float(c.mean())
    d = c - row - col + grand
    var = float((d * d).sum()) / (n - 1)
    if not np.isfinite(var) or var <= 0.0:
        return None
    mean = grand * n
    sd = var ** 0.5
    z = (t - mean) / sd
    return PermutationTest(t, mean, sd, z, norm_sf(z), n)


def bonferroni_min(p_values: list[float]) -> float:
    """Family-wise valid combination for dependent tests: ``min(1, m * min p)``."""
    if not p_values:
        return 1.0
    return float(min(1.0, len(p_values) * min(p_values)))


def cantelli_bound(z: float) -> float:
    """Distribution-free upper bound on the one-sided p-value from the exact permutation mean
    and variance alone (Cantelli's inequality): ``P(T - E >= z sd) <= 1 / (1 + z^2)``."""
    return 1.0 if z <= 0 else 1.0 / (1.0 + z * z)


#: Roles whose *columns* are the residual stream (input of a projection from the residual)
#: and roles whose *rows* are: residual dimensions are exchangeable under independent
#: initialisation (a permutation of them, applied consistently, leaves the function intact),
#: so the null permutes that axis. Heads' channels are not exchangeable under RoPE.
RESIDUAL_COLUMNS = frozenset({
    "attn.q", "attn.k", "attn.v", "mlp.gate", "mlp.up", "moe.router",
    "moe.expert.gate", "moe.expert.up", "embed", "lm_head",
})
RESIDUAL_ROWS = frozenset({"attn.o", "mlp.down", "moe.expert.down"})


def residual_major(role: str, matrix: np.ndarray) -> np.ndarray | None:
    """The matrix with residual dimensions as rows (the permuted axis), or None when the role's
    residual axis is not known."""
    if role in RESIDUAL_ROWS:
        return matrix
    if role in RESIDUAL_COLUMNS:
        return matrix.T
    return None
