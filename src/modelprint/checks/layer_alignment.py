"""Align layers of models of different depth: monotone runs, many-to-one, with jumps.

Layer drop, depth pruning and SOLAR-style depth up-scaling (a 32-layer stack duplicated, layers
0-23 of one copy followed by 8-31 of the other) all keep runs of consecutive parent layers. Given
a similarity matrix ``S`` (candidate layers x reference layers), dynamic programming finds, for
every candidate layer ``i``, a reference layer ``f(i)`` maximising ``sum_i S[i, f(i)]`` minus a
penalty for every place where ``f`` does not advance by exactly one (a skip, a repeat or a jump
back). The result reads as runs: "candidate layers 24-47 <- reference layers 8-31".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modelprint._median import median


@dataclass(frozen=True)
class LayerAlignment:
    mapping: list[tuple[int, int]]     # (candidate layer, reference layer)
    runs: list[tuple[int, int, int, int]]  # (cand start, cand end, ref start, ref end), inclusive
    score: float                        # mean similarity along the mapping

    def describe(self) -> str:
        parts = []
        for c0, c1, r0, r1 in self.runs:
            cand = f"{c0}" if c0 == c1 else f"{c0}-{c1}"
            ref = f"{r0}" if r0 == r1 else f"{r0}-{r1}"
            parts.append(f"candidate layers {cand} <- reference layers {ref}")
        return "; ".join(parts)


def align_layers(sim: np.ndarray, jump_penalty: float | None = None) -> LayerAlignment:
    """Best piecewise-consecutive mapping of candidate rows onto reference columns.

    The default penalty is half the spread between the best and the median similarity, so a
    jump is taken only where it buys clearly better matches.
    """
    sim = np.asarray(sim, dtype=np.float64)
    la, lb = sim.shape
    if jump_penalty is None:
        jump_penalty = 0.5 * float(np.max(sim) - median(sim))
    best = np.full((la, lb), -np.inf)
    back = np.zeros((la, lb), dtype=np.int64)
    best[0] = sim[0]
    for i in range(1, la):
        prev = best[i - 1]
        j_any = int(np.argmax(prev))
        for j in range(lb):
            stay = prev[j - 1] if j > 0 else -np.inf            # advance by one: free
            jump = prev[j_any] - jump_penalty                    # anything else: penalised
            if stay >= jump:
                best[i, j], back[i, j] = stay + sim[i, j], j - 1
            else:
                best[i, j], back[i, j] = jump + sim[i, j], j_any
    j = int(np.argmax(best[-1]))
    path = [j]
    for i in range(la - 1, 0, -1):
        j = int(back[i, j])
        path.append(j)
    path.reverse()
    mapping = list(enumerate(path))
    runs: list[tuple[int, int, int, int]] = []
    for i, j in mapping:
        if runs and runs[-1][1] == i - 1 and runs[-1][3] == j - 1:
            c0, _, r0, _ = runs[-1]
            runs[-1] = (c0, i, r0, j)
        else:
            runs.append((i, i, j, j))
    score = float(np.mean([sim[i, j] for i, j in mapping]))
    return LayerAlignment(mapping, runs, score)
