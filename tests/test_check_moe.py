"""moe_upcycling on mixture-of-experts models built from a dense model (known truth).

Upcycled candidates are made the two ways the field does it -- every expert a copy of the
dense FFN (Mixtral-style) or a 1/k slice of its hidden units (Qwen1.5-MoE-style, optionally
shuffled) -- plus training noise as large as the weights. Negatives: a MoE with its own random
experts, and the hard one, a MoE upcycled from *another* dense model (its experts are
near-identical, so their tests are strongly dependent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelprint.checks.base import ModelView
from modelprint.checks.moe_upcycling import CHECK as MOE
from modelprint.models import load_model

from .synth import make_model
from .test_check_mlp_matching import ALPHA, Weights, dense, view

ROLES = ("up", "gate", "down")


def upcycle(base: Weights, seed: int, *, experts: int = 4, split: int = 1,
            shuffle: bool = False, noise: float = 0.02) -> Weights:
    """A MoE whose expert ``e`` of every layer is slice ``e % split`` of the dense FFN's units
    (the whole FFN when ``split`` is 1), units shuffled within the expert if asked, plus noise."""
    rng = np.random.default_rng(seed)
    out: Weights = {("embed", None, None): base[("embed", None, None)]
                    + rng.normal(0, noise / 4, base[("embed", None, None)].shape)}
    layers = sorted({k[1] for k in base if k[1] is not None})
    for i in layers:
        ff = base[("mlp.up", i, None)].shape[0]
        size = ff // split
        out[("moe.router", i, None)] = rng.normal(0, 0.02, (experts, base[("mlp.up", i, None)]
                                                             .shape[1]))
        for e in range(experts):
            idx = np.arange(size) + (e % split) * size
            if shuffle:
                idx = rng.permutation(idx)
            for r in ROLES:
                w = base[(f"mlp.{r}", i, None)]
                part = w[:, idx] if r == "down" else w[idx]
                out[(f"moe.expert.{r}", i, e)] = part + rng.normal(0, noise, part.shape)
    return out


def random_moe(seed: int, layers: int = 4, experts: int = 4, d: int = 64, ff: int = 64) -> Weights:
    rng = np.random.default_rng(seed)
    ws: Weights = {("embed", None, None): rng.normal(0, 0.02, (256, d))}
    for i in range(layers):
        for e in range(experts):
            for r in ROLES:
                shape = (d, ff) if r == "down" else (ff, d)
                ws[(f"moe.expert.{r}", i, e)] = rng.normal(0, 0.02, shape)
    return ws


def run(a: Weights, b: Weights, weights: bool = True, **options: Any) -> Any:
    return MOE.compute(view(a, "moe", weights=weights), view(b, "dense", weights=weights),
                       {"alpha": ALPHA, **options})


def test_experts_copied_from_the_dense_ffn_are_found() -> None:
    base = dense(1)
    ev = run(upcycle(base, 3, experts=4), base)
    assert ev.applicable and ev.indicates_derivation is True
    assert ev.details["order_test"]["log10_p"] < -30
    assert ev.details["matched_fraction"] == 1.0
    first = ev.details["per_expert"][0]
    assert first["dense_slice"] == "units 0-127 of 128 (all, one to one)"
    assert "candidate experts" in ev.summary and "match the reference's dense FFN" in ev.summary
    assert ev.details["moe_side"] == "candidate"


def test_fine_grained_slices_are_found_and_named() -> None:
    base = dense(1)
    ev = run(upcycle(base, 3, experts=8, split=4), base)
    assert ev.indicates_derivation is True
    layer0 = [r for r in ev.details["per_expert"] if r["layer_a"] == 0]
    assert [r["dense_slice"] for r in layer0[:4]] == [
        f"units {lo}-{lo + 31} of 128 (a contiguous 1/4 slice)" for lo in (0, 32, 64, 96)]
    assert all(r["in_order"] and r["rho"] > 0.95 for r in layer0)


def test_shuffled_slices_are_found_by_the_consistency_arm() -> None:
    base = dense(1)
    ev = run(upcycle(base, 3, experts=8, split=4, shuffle=True, noise=0.01), base)
    assert ev.indicates_derivation is True
    assert ev.details["order_test"]["p_value"] > 1e-4
    assert ev.details["consistency_test"]["log10_p"] < -20
    assert "(shuffled)" in ev.summary


def test_sketches_compare_copied_experts_but_not_slices() -> None:
    base = dense(1)
    copies = run(upcycle(base, 3), base, weights=False)
    assert copies.indicates_derivation is True
    assert copies.details["path"].startswith("fingerprint")
    slices = run(upcycle(base, 3, experts=4, split=2), base, weights=False)
    assert not slices.applicable and "full weights" in (slices.reason or "")


def test_an_upcycled_model_stops_after_a_few_layers() -> None:
    """Every expert of a layer is matched against the dense FFN: most of the check's cost on a
    real MoE. An upcycle is beyond doubt after a few layers (unit_matching.EarlyStop)."""
    base = dense(1, layers=6)
    quick, whole = run(upcycle(base, 3), base), run(upcycle(base, 3), base, early_stop=False)
    lc = quick.details["layers_compared"]
    assert lc["early_stop"] is True and lc["compared"] < 6 and lc["of"] == 6
    assert {r["layer_a"] for r in quick.details["per_expert"]} == set(range(lc["compared"]))
    assert quick.indicates_derivation is whole.indicates_derivation is True
    assert whole.details["layers_compared"]["compared"] == 6


def test_depth_alignment_pairs_moe_layers_with_their_dense_parents() -> None:
    base = dense(1, layers=6)
    moe = upcycle(base, 3)
    dropped: Weights = {k: w for k, w in moe.items() if k[1] is None}
    for new, old in enumerate([0, 1, 2, 5]):
        dropped.update({(r, new, e): w for (r, lay, e), w in moe.items() if lay == old})
    ev = run(dropped, base, early_stop=False)   # every layer pair, to see the alignment
    assert ev.indicates_derivation is True
    assert sorted({(r["layer_a"], r["layer_b"]) for r in ev.details["per_expert"]}) == \
        [(0, 0), (1, 1), (2, 2), (3, 5)]


def test_not_applicable_without_experts_or_with_experts_on_both_sides() -> None:
    base = dense(1)
    ev = run(base, base)
    assert not ev.applicable and "neither model has experts" in (ev.reason or "")
    moe = upcycle(base, 3)
    ev = run(moe, moe)
    assert not ev.applicable and "both models have experts" in (ev.reason or "")


def test_dense_candidate_against_an_upcycled_reference_is_tested_the_other_way() -> None:
    """A dense derivative of the base (here: its FFN units shuffled, as a permuted copy has
    them) against the MoE upcycled from that base: the MoE's experts are matched into the
    candidate's dense FFN, and the layer map given candidate -> reference is honoured."""
    base = dense(1, layers=4)
    moe = upcycle(base, 3)
    rng = np.random.default_rng(9)
    shuffled: Weights = dict(base)
    for i in range(4):
        perm = rng.permutation(base[("mlp.up", i, None)].shape[0])
        for r in ROLES:
            w = base[(f"mlp.{r}", i, None)]
            shuffled[(f"mlp.{r}", i, None)] = w[:, perm] if r == "down" else w[perm]
    ev = MOE.compute(view(shuffled, "dense"), view(moe, "moe"), {"alpha": ALPHA})
    assert ev.applicable and ev.indicates_derivation is True
    assert ev.details["moe_side"] == "reference"
    assert "reference experts" in ev.summary and "candidate's dense FFN" in ev.summary
    assert ev.details["consistency_test"]["log10_p"] < -20
    mapped = MOE.compute(view(shuffled, "dense"), view(moe, "moe"),
                         {"alpha": ALPHA, "layer_map": [[0, 0], [1, 1], [2, 3]],
                          "early_stop": False})
    # layer_a of a record is the MoE model's layer: candidate (dense) layer 2 <- MoE layer 3
    assert sorted({(r["layer_a"], r["layer_b"]) for r in mapped.details["per_expert"]}) == \
        [(0, 0), (1, 1), (3, 2)]
    independent = MOE.compute(view(dense(7), "dense"), view(moe, "moe"), {"alpha": ALPHA})
    assert independent.applicable and independent.indicates_derivation is False


def test_independent_moe_shows_nothing() -> None:
    ev = run(random_moe(5, ff=64), dense(1))
    assert ev.applicable and ev.indicates_derivation is False


def test_moe_upcycled_from_another_dense_model_gives_valid_p_values() -> None:
    """Its experts are near-copies of each other, so all experts of a layer give the same
    random matching: combining them as if independent would produce false positives."""
    order, consistency = [], []
    for seed in range(30):
        other = upcycle(dense(1000 + seed, layers=2), 5000 + seed, experts=4, split=2)
        ev = run(other, dense(seed, layers=2))
        assert ev.indicates_derivation is False
        assert ev.p_value is not None and ev.p_value > ALPHA
        order.append(ev.details["order_test"]["p_value"])
        consistency.append(ev.details["consistency_test"]["p_value"])
    # Bonferroni over near-identical experts is conservative, never anti-conservative
    for ps in (order, consistency):
        assert np.mean(np.array(ps) < 0.1) <= 0.1 + 3 * np.sqrt(0.09 / 30)
        assert stats.kstest(ps, "uniform", alternative="greater").pvalue > 1e-3


def test_real_checkpoints_through_the_loader(tmp_path: Path) -> None:
    """A synthetic Mixtral and an unrelated synthetic Llama, read from safetensors files."""
    moe = make_model(tmp_path, "mixtral", experts=4, seed=1, intermediate=96)
    llama = make_model(tmp_path, "llama", seed=2, intermediate=96)
    a = load_model(moe.path, weights=True)
    b = load_model(llama.path, weights=True)
    assert isinstance(a, ModelView) and a.weights is not None
    ev = MOE.compute(a, b, {"alpha": ALPHA})
    assert ev.applicable and ev.indicates_derivation is False
    assert ev.details["path"] == "full weights" and ev.details["experts_tested"] == 8
    reverse = MOE.compute(b, a, {"alpha": ALPHA})
    assert reverse.applicable and reverse.details["moe_side"] == "reference"
    assert reverse.indicates_derivation is False


@pytest.mark.parametrize("split", [1, 2])
def test_independent_random_moes_are_uniform(split: int) -> None:
    ps = []
    for seed in range(30):
        ev = run(random_moe(seed, layers=2, ff=128 // split), dense(500 + seed, layers=2))
        assert ev.indicates_derivation is False
        ps.append(ev.details["order_test"]["p_value"])
    assert np.mean(np.array(ps) < 0.1) <= 0.1 + 3 * np.sqrt(0.09 / 30)
