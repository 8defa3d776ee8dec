"""layernorm — the seed's norm-gain comparison, plus centred per-layer correlation of the gains.

The seed compared the per-layer std of the pre-attention norm weights over depth, as for
attention_std (shape only; same false-positive problem, METHODS.md §2.2). The Solar-vs-GLM
dispute (2026) showed the other trap: norm gains are mostly positive and share a large mean, so
their *uncentred* cosine is ≈ 0.99 even for unrelated models (centred r ≈ 0.01), while a truly
derived pair keeps centred r ≈ 1. The coordinates of the residual stream are arbitrary for
independently trained models, so the centred correlation of two gain vectors has a null near 0.

This check therefore reports, for the pre-attention (``norm.attn``) and pre-MLP (``norm.mlp``)
norms (``roles`` option; ``norm.q``/``norm.k`` may be added):
  * ``score`` — the seed's curve statistic: mean over roles of Pearson r of the gain-std curves;
  * ``vector_centred_r`` — mean over aligned layers and roles of the centred correlation of
    the gain vectors (needs equal widths);
  * ``uncentred_cosine_not_evidence`` — shown only to make the trap visible; never used.
Fingerprint vectors are the effective gains (1 + w for Gemma); the centred correlation and the
std curves are unchanged by such a constant offset anyway.

Decision rule: the weak curve rule of :mod:`.attention_std` AND, when the widths match,
``vector_centred_r ≥ vector_threshold`` (default 0.5; independent models sit near 0, a
fine-tune near 1). The vector condition only removes indications. Not applicable when either
side has no such norms.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelprint.checks import attention_std as seed
from modelprint.checks.base import WEAK, Evidence, ModelView
from modelprint.checks.qkv_bias import vector_seed_evidence
from modelprint.roles import NORMS


class LayerNorm:
    name: ClassVar[str] = "layernorm"
    strength: ClassVar[str] = WEAK
    default_options: ClassVar[dict[str, Any]] = {
        **seed.SEED_OPTIONS, "vector_threshold": 0.5, "roles": list(NORMS),
    }
    description: ClassVar[str] = (
        "Pre-attention and pre-MLP norm gains: the seed's per-layer std curve correlation "
        "(shape only; the same false-positive problem as attention_std) and the per-layer "
        "centred correlation of the gain vectors, which is near 0 for independent models. "
        "The uncentred cosine is shown but is not evidence: it is near 1 for unrelated models "
        "because gains share a positive mean. Weak evidence; never decides 'derived' alone."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        opts = seed.merged(self.default_options, options)
        roles = [str(r) for r in opts["roles"]] or list(NORMS)
        return vector_seed_evidence(self.name, roles, "norm gains", a, b, opts,
                                    use_magnitude=False)


CHECK = LayerNorm()
