"""embedding_alignment: are the two residual streams the same basis, up to order and sign?

The residual dimensions of both models are matched through the embeddings of shared tokens
(``checks/alignment.py``). Under independent initialisation the residual dimensions of one model
are exchangeable (any consistent permutation is an equally likely outcome of training), so the
matched permutation is uniformly random and its Spearman correlation with the identity has a
valid p-value (Zhu et al., arXiv 2502.12292). A model derived without touching its residual
basis matches dimension i to dimension i (rho near 1). The matching strength (mean |corr| of
matched columns) is reported too; it is not by itself evidence of derivation, because models
trained on the same language share embedding geometry.

The alignment also fits an orthogonal map (Procrustes); when that explains the embeddings far
better than any signed permutation, the residual stream was rotated (QuaRot/SpinQuant-style),
dimensions have no order to test, and an unrelated order says nothing: the check then reports
"no information" and names the rotation and its fit residual (the hidden-unit checks undo it).

Cannot show: a derivative whose residual stream was deliberately permuted fails the order test
(the alignment still recovers it for ``attention_cka``); models without enough shared tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from modelprint.checks.alignment import MIN_SHARED_TOKENS, align, blind_to_rotation
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.unit_matching import spearman_logp, to_p


class EmbeddingAlignment:
    name: ClassVar[str] = "embedding_alignment"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {"alpha": 1e-6}
    description: ClassVar[str] = (
        "Matches the residual dimensions of both models through the embeddings of shared "
        "tokens (linear assignment with sign flips) and tests whether the matching keeps the "
        "dimensions' order (Spearman vs identity; valid p-value under independent "
        "initialisation). Decisive for derivatives that kept their residual basis; a "
        "deliberately permuted residual stream passes this test but not attention_cka."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        al = align(a.fingerprint, b.fingerprint)
        if al is None:
            return Evidence.not_applicable(
                self.name, self.strength,
                f"fewer than {MIN_SHARED_TOKENS} shared sampled tokens with embeddings "
                "(different vocabularies, or a fingerprint without an embedding sketch)", alpha)
        n = len(al.target_to_base)
        # one-sided Spearman (same order), t tail floored at 1/n! (unit_matching)
        rho, logp = spearman_logp(np.arange(n), al.target_to_base)
        p = to_p(logp)
        indicates: bool | None = p <= alpha
        blind = None if indicates else blind_to_rotation(a.fingerprint, b.fingerprint)
        if blind:
            indicates = None
        identity_fraction = float(np.mean(al.target_to_base == np.arange(n)))
        summary = (
            f"{al.shared_tokens} shared tokens; matched residual dimensions keep their order "
            f"(Spearman rho {rho:.3f}, {identity_fraction:.0%} matched to the same index)"
            if indicates else
            f"{al.shared_tokens} shared tokens; matched residual dimensions are in unrelated "
            f"order (Spearman rho {rho:.3f}); matching strength {al.strength:.3f}"
        ) + (f"; no information: {blind}" if blind else "")
        return Evidence(
            check=self.name, strength=self.strength, applicable=True, score=rho,
            threshold=alpha, p_value=p, indicates_derivation=indicates, summary=summary,
            reason=blind,
            details={
                "shared_tokens": al.shared_tokens,
                "residual_basis": al.describe(),
                "rotated": al.rotated,
                "permutation_fit_residual": al.permutation_residual,
                "rotation_fit_residual": al.rotation_residual,
                "dimensions_matched": n,
                "candidate_is_wider": al.a_is_base,
                "spearman_rho": rho,
                "identity_fraction": identity_fraction,
                "matching_strength": al.strength,
                "sign_flips": int(np.sum(al.sign < 0)),
                "p_value_method": "one-sided Spearman test of the matched permutation against "
                                  "the identity (valid under exchangeable residual dimensions)",
            },
        )


CHECK = EmbeddingAlignment()
