"""weights_cosine and identity on fingerprints whose truth is known.

Models are built as fingerprints holding sketches of real matrices (the sketch path is the one
``*.fp.json`` references take), so these tests need no weight files.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelprint.arch.base import ArchInfo
from modelprint.checks.base import ModelView
from modelprint.checks.identity import CHECK as IDENTITY
from modelprint.checks.permutation import row_permutation_test
from modelprint.checks.weights_cosine import CHECK as COSINE
from modelprint.fingerprint.model import Fingerprint, ModelInfo, TensorStat
from modelprint.fingerprint.sketches import entry_from_matrix, slot_key

ROLES = {"attn.q": (64, 96), "attn.o": (96, 64), "mlp.up": (128, 96), "mlp.down": (96, 128)}


def weights(seed: int, layers: int = 3) -> dict[tuple[str, int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {(role, layer): rng.normal(0, 0.02, shape)
            for layer in range(layers) for role, shape in ROLES.items()}


def view(ws: dict[tuple[str, int], np.ndarray], name: str, hashes: bool = True,
         algorithm: str = "blake3") -> ModelView:
    import hashlib

    import blake3

    def digest(w: np.ndarray) -> str:
        raw = w.astype(np.float32).tobytes()
        return (blake3.blake3(raw) if algorithm == "blake3" else hashlib.sha256(raw)).hexdigest()

    arch = ArchInfo(family="llama", num_layers=1 + max(k[1] for k in ws), hidden_size=96,
                    num_heads=4, num_kv_heads=4, head_dim=16)
    tensors = [TensorStat(role=r, layer=layer, expert=None, tensor=f"{r}.{layer}",
                          shape=list(w.shape), dtype="F32", count=w.size, mean=float(w.mean()),
                          std=float(w.std(ddof=1)), l2=float(np.linalg.norm(w)),
                          **{algorithm: digest(w) if hashes else ""})
               for (r, layer), w in ws.items()]
    sk = {"version": 1,
          "matrix": {slot_key(r, layer, None): entry_from_matrix(w)
                     for (r, layer), w in ws.items()}}
    fp = Fingerprint(model=ModelInfo(reference=name, kind="fingerprint"), architecture=arch,
                     tensors=tensors, sketches=sk)
    return ModelView(fp)


def test_independent_models_show_nothing() -> None:
    ev = COSINE.compute(view(weights(1), "a"), view(weights(2), "b"), {})
    assert ev.applicable and ev.indicates_derivation is False
    assert abs(ev.score) < 0.05
    assert ev.p_value is not None and ev.p_value > 1e-6


def test_fine_tuned_copy_is_detected_even_after_heavy_drift() -> None:
    base = weights(1)
    rng = np.random.default_rng(9)
    # noise as large as the weights themselves: cosine ~0.7, still far beyond chance
    tuned = {k: w + rng.normal(0, 0.02, w.shape) for k, w in base.items()}
    ev = COSINE.compute(view(tuned, "tuned"), view(base, "base"), {})
    assert ev.indicates_derivation is True
    assert 0.5 < ev.score < 0.9
    assert ev.p_value is not None and ev.p_value < 1e-12


def test_residual_permutation_hides_a_copy_from_element_wise_cosine() -> None:
    """Documented blind spot: permuting the residual stream defeats element-wise tests."""
    base = weights(1)
    perm = np.random.default_rng(3).permutation(96)
    permuted = {(r, layer): (w[perm] if r in ("attn.o", "mlp.down") else w[:, perm])
                for (r, layer), w in base.items()}
    ev = COSINE.compute(view(permuted, "perm"), view(base, "base"), {})
    assert ev.indicates_derivation is False


def test_shapes_that_differ_make_the_check_not_applicable() -> None:
    rng = np.random.default_rng(0)
    other = {(r, 0): rng.normal(0, 0.02, (s[0] + 1, s[1])) for r, s in ROLES.items()}
    ev = COSINE.compute(view(other, "x"), view(weights(1, layers=1), "y"), {})
    assert not ev.applicable and "same shape" in (ev.reason or "")


def test_permutation_p_values_are_uniform_under_independence() -> None:
    rng = np.random.default_rng(0)
    ps = [row_permutation_test(rng.normal(size=(64, 64)), rng.normal(size=(64, 64))).p_value
          for _ in range(400)]
    assert stats.kstest(ps, "uniform").pvalue > 1e-3
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09


def test_identity_finds_byte_identical_tensors() -> None:
    base = weights(1)
    copy = dict(weights(2))
    copy[("mlp.up", 1)] = base[("mlp.up", 1)]
    ev = IDENTITY.compute(view(copy, "c"), view(base, "b"), {})
    assert ev.indicates_derivation is True and ev.details["kind"] == "exact"
    assert ev.details["exact_matches"][0]["candidate"] == ["mlp.up layer 1"]


def test_identity_never_matches_digests_of_different_algorithms() -> None:
    """A fingerprint from before format /3 (sha256 tensor digests) against a new one (BLAKE3):
    byte identity cannot be checked and the summary says so; a whole copy is still found
    through the aligned samples."""
    base = weights(1)
    copy = dict(weights(2))
    copy[("mlp.up", 1)] = base[("mlp.up", 1)]
    ev = IDENTITY.compute(view(copy, "c"), view(base, "b", algorithm="sha256"), {})
    assert ev.details["exact_match_count"] == 0 and ev.details["byte_identity_checked"] is False
    assert ev.details["digest_algorithms"] == {"candidate": ["blake3"], "reference": ["sha256"]}
    assert "re-create the older fingerprint" in (ev.summary or "")
    same = IDENTITY.compute(view(base, "c"), view(base, "b", algorithm="sha256"), {})
    assert same.indicates_derivation is True and same.details["kind"] == "near"
    both_old = IDENTITY.compute(view(copy, "c", algorithm="sha256"),
                                view(base, "b", algorithm="sha256"), {})
    assert both_old.details["kind"] == "exact" and both_old.details["byte_identity_checked"]


def test_identity_finds_a_quantised_copy_and_not_an_independent_model() -> None:
    base = weights(1)
    step = 0.02 / 8  # coarse rounding, as a 4-bit quantiser would do
    quant = {k: np.round(w / step) * step for k, w in base.items()}
    ev = IDENTITY.compute(view(quant, "q"), view(base, "b"), {})
    assert ev.indicates_derivation is True and ev.details["kind"] == "near"
    ev2 = IDENTITY.compute(view(weights(2), "i"), view(base, "b"), {})
    assert ev2.indicates_derivation is False
    assert ev2.details["median_relative_difference"] > 1.0


@pytest.mark.parametrize("check", [COSINE, IDENTITY])
def test_no_sketches_means_not_applicable_or_hash_only(check: object) -> None:
    a, b = view(weights(1), "a"), view(weights(2), "b")
    a.fingerprint.sketches = {}
    ev = check.compute(a, b, {})  # type: ignore[attr-defined]
    assert ev.indicates_derivation in (False, None)
