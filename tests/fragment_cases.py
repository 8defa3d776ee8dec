"""Evidence of the weight-level checks computed on small synthetic models with known truth,
shaped exactly as the audit engine writes it, for the report-fragment tests.

The models come from the check tests' own builders (fingerprints with sketches, an embedding
sample and an in-memory weight store), so the details are real ones: if a check changes its
``details`` keys, these cases change with it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from modelprint.checks import embedding_alignment, identity, mlp_matching, moe_upcycling
from modelprint.checks import weights_cosine as wc
from modelprint.checks.base import Check, Evidence
from modelprint.engine import json_safe

from .test_check_alignment import derive as derive_embed
from .test_check_alignment import parent as embed_parent
from .test_check_alignment import view as embed_view
from .test_check_mlp_matching import ALPHA, _as_moe, dense, noisy
from .test_check_mlp_matching import view as unit_view
from .test_check_moe import random_moe, upcycle
from .test_check_weights_cosine import view as sketch_view
from .test_check_weights_cosine import weights as sketch_weights

CHECKS: dict[str, Check] = {"identity": identity.CHECK, "weights_cosine": wc.CHECK,
          "embedding_alignment": embedding_alignment.CHECK, "mlp_matching": mlp_matching.CHECK,
          "moe_upcycling": moe_upcycling.CHECK}


def as_result(ev: Evidence, expect: str = "derived") -> dict[str, Any]:
    """An evidence as it appears under ``pairs[i].checks[name]`` in the result JSON."""
    if not ev.applicable:
        outcome = "skipped"
    else:
        outcome = "passed" if ev.indicates_derivation == (expect == "derived") else "failed"
    return json_safe({**ev.to_json(), "outcome": outcome,
                      "description": CHECKS[ev.check].description})


def _sketch_case(case: str) -> tuple[Any, Any]:
    base = sketch_weights(1)
    rng = np.random.default_rng(5)
    if case == "exact":         # half the tensors copied bit for bit, the rest fine-tuned
        cand = {k: (w if k[1] == 0 else w + rng.normal(0, 0.004, w.shape))
                for k, w in base.items()}
    elif case == "near":        # a light fine-tune / quantisation: relative difference ~0.05
        cand = {k: w + rng.normal(0, 0.001, w.shape) for k, w in base.items()}
    elif case == "tuned":       # heavy drift: cosine ~0.7, still far beyond chance
        cand = {k: w + rng.normal(0, 0.02, w.shape) for k, w in base.items()}
    else:
        cand = sketch_weights(2)
    return sketch_view(cand, "candidate"), sketch_view(base, "reference")


@cache
def evidence(check: str, case: str) -> dict[str, Any]:
    """The result-JSON evidence of ``check`` on the synthetic pair ``case``.

    identity / weights_cosine: exact, near, tuned, independent; embedding_alignment: derived,
    permuted, independent; mlp_matching: derived (every layer), stopped (the same pair, stopped
    early), experts (two MoE models, fine-tuned), independent; moe_upcycling: copies,
    slices (shuffled 1/2 slices), independent."""
    opts = {"alpha": ALPHA}
    if check in ("identity", "weights_cosine"):
        a, b = _sketch_case(case)
    elif check == "embedding_alignment":
        p = embed_parent(0)
        other = embed_parent(1)
        m = {"derived": derive_embed(p, 1), "permuted": derive_embed(p, 1, noise=0.05,
                                                                     permute=True),
             "independent": other}[case]
        a, b = embed_view(m, "candidate"), embed_view(p, "reference")
    elif check == "mlp_matching":
        base = dense(1) if case != "experts" else _as_moe(dense(1, layers=2), 3, seed=50)
        cand = {"derived": lambda: noisy(base, 3), "stopped": lambda: noisy(base, 3),
                "experts": lambda: noisy(base, 7), "independent": lambda: dense(2)}[case]()
        # "derived" draws every layer pair; "stopped" is what a real derived pair shows
        opts["early_stop"] = case == "stopped"
        a, b = unit_view(cand, "candidate"), unit_view(base, "reference")
    elif check == "moe_upcycling":
        base = dense(1)
        cand = {"copies": upcycle(base, 3, experts=4),
                "slices": upcycle(base, 4, experts=4, split=2, shuffle=True),
                "independent": random_moe(5, ff=128)}[case]
        a, b = unit_view(cand, "candidate"), unit_view(base, "reference")
    else:
        raise KeyError(check)
    expect = "independent" if case == "independent" else "derived"
    return as_result(CHECKS[check].compute(a, b, opts), expect)


CASES = [("identity", "exact"), ("identity", "near"), ("identity", "independent"),
         ("weights_cosine", "tuned"), ("weights_cosine", "independent"),
         ("embedding_alignment", "derived"), ("embedding_alignment", "permuted"),
         ("embedding_alignment", "independent"),
         ("mlp_matching", "derived"), ("mlp_matching", "stopped"), ("mlp_matching", "experts"),
         ("mlp_matching", "independent"),
         ("moe_upcycling", "copies"), ("moe_upcycling", "slices"),
         ("moe_upcycling", "independent")]


def pair_with(checks: dict[str, dict[str, Any]], name: str = "reference") -> dict[str, Any]:
    """A result-JSON pair holding only ``checks``."""
    return {"audit": None, "candidate": {"reference": "./models/candidate", "kind": "directory"},
            "reference": {"reference": f"hf:org/{name}", "name": name, "kind": "hf"},
            "expect": None, "verdict": "inconclusive", "verdict_reason": "", "outcome": None,
            "checks": checks}
