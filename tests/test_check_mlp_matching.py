"""mlp_matching on synthetic models whose truth is known.

Models are built in the test as fingerprints (sketches + an embedding sample for the residual
alignment) plus a tiny in-memory weight store, so both the full-weight path and the
fingerprint-only path are exercised without weight files. Helpers are reused by
``test_check_moe.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from modelprint.arch.base import ArchInfo
from modelprint.checks.base import ModelView
from modelprint.checks.mlp_matching import CHECK as MLP
from modelprint.checks.unit_matching import fisher_logp, spearman_logp
from modelprint.errors import InputError
from modelprint.fingerprint.model import Fingerprint, ModelInfo, TensorStat
from modelprint.fingerprint.sketches import embedding_entry, entry_from_matrix, slot_key

Key = tuple[str, int | None, int | None]
Weights = dict[Key, np.ndarray]
TOKENS = [f"t{i:04d}" for i in range(256)]
ALPHA = 1e-6


class DictWeights:
    """The WeightAccess protocol over a dict, float32 like the real loader."""

    def __init__(self, ws: Weights) -> None:
        self.ws = ws

    def get(self, role: str, layer: int | None, expert: int | None = None, *,
            cols: np.ndarray | None = None) -> np.ndarray | None:
        w = self.ws.get((role, layer, expert))
        if w is None:
            return None
        return (w if cols is None else w[:, np.asarray(cols)]).astype(np.float32)

    def rows(self, role: str, layer: int | None, index: np.ndarray,
             expert: int | None = None, *, cols: np.ndarray | None = None
             ) -> np.ndarray | None:
        w = self.get(role, layer, expert, cols=cols)
        return None if w is None else w[np.asarray(index)]


def dense(seed: int, layers: int = 4, d: int = 64, ff: int = 128, glu: bool = True) -> Weights:
    rng = np.random.default_rng(seed)
    ws: Weights = {("embed", None, None): rng.normal(0, 0.02, (len(TOKENS), d))}
    for i in range(layers):
        ws[("mlp.up", i, None)] = rng.normal(0, 0.02, (ff, d))
        if glu:
            ws[("mlp.gate", i, None)] = rng.normal(0, 0.02, (ff, d))
        ws[("mlp.down", i, None)] = rng.normal(0, 0.02, (d, ff))
    return ws


def noisy(ws: Weights, seed: int, scale: float = 0.02) -> Weights:
    """A fine-tune: noise as large as the weights (cosine ~0.7 with the parent)."""
    rng = np.random.default_rng(seed)
    return {k: w + rng.normal(0, scale, w.shape) for k, w in ws.items()}


def units_map(ws: Weights, pick: Any) -> Weights:
    """Apply ``pick(layer, n_units) -> index`` to every layer's hidden units."""
    out: Weights = {}
    for (role, layer, e), w in ws.items():
        if role in ("mlp.up", "mlp.gate"):
            out[(role, layer, e)] = w[pick(layer, w.shape[0])]
        elif role == "mlp.down":
            out[(role, layer, e)] = w[:, pick(layer, w.shape[1])]
        else:
            out[(role, layer, e)] = w
    return out


def view(ws: Weights, name: str, *, weights: bool = True, embed: bool = True) -> ModelView:
    layers = [k[1] for k in ws if k[1] is not None]
    d = ws[("embed", None, None)].shape[1]
    arch = ArchInfo(family="llama", num_layers=1 + max(layers), hidden_size=d, num_heads=4,
                    num_kv_heads=4, head_dim=d // 4)
    tensors = [TensorStat(role=r, layer=lay, expert=e, tensor=f"{r}.{lay}.{e}",
                          shape=list(w.shape), dtype="F32", count=w.size, mean=float(w.mean()),
                          std=float(w.std(ddof=1)), l2=float(np.linalg.norm(w)), sha256="")
               for (r, lay, e), w in ws.items()]
    sk: dict[str, Any] = {"version": 1, "matrix": {
        slot_key(r, lay, e): entry_from_matrix(w) for (r, lay, e), w in ws.items()
        if r != "embed"}}
    if embed:
        sk["embedding"] = embedding_entry(TOKENS, ws[("embed", None, None)])
    fp = Fingerprint(model=ModelInfo(reference=name, kind="fingerprint"), architecture=arch,
                     tensors=tensors, sketches=sk)
    return ModelView(fp, DictWeights(ws) if weights else None)


def run(a: Weights, b: Weights, weights: bool = True, **options: Any) -> Any:
    return MLP.compute(view(a, "cand", weights=weights), view(b, "ref", weights=weights),
                       {"alpha": ALPHA, **options})


# -- the statistics --------------------------------------------------------------------------


def test_spearman_log_p_is_floored_at_the_permutation_minimum() -> None:
    n = 50
    rho, logp = spearman_logp(np.arange(n), np.arange(n))
    assert rho == 1.0 and logp == pytest.approx(-float(np.sum(np.log(np.arange(1, n + 1)))))
    rho, logp = spearman_logp(np.arange(n), np.arange(n)[::-1])
    assert rho == pytest.approx(-1.0) and logp > np.log(0.99)


def test_fisher_log_p_matches_scipy_where_scipy_does_not_underflow() -> None:
    logps = list(np.log([0.01, 0.2, 0.5, 0.03]))
    expect = stats.combine_pvalues(np.exp(logps), method="fisher").pvalue
    assert fisher_logp(logps) == pytest.approx(np.log(expect), rel=1e-9)
    assert np.isfinite(fisher_logp([-5000.0, -3000.0]))      # where scipy gives 0


# -- known truth -----------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [True, False], ids=["full", "sketch"])
def test_fine_tuned_copy_is_detected(weights: bool) -> None:
    base = dense(1)
    ev = run(noisy(base, 7), base, weights=weights)
    assert ev.applicable and ev.indicates_derivation is True
    assert ev.p_value is not None and ev.p_value < 1e-30
    assert ev.details["order_test"]["log10_p"] < -30
    assert ev.details["path"].startswith("full" if weights else "fingerprint")
    assert all(r["rho"] > 0.9 for r in ev.details["per_layer"])


def test_permuted_hidden_units_are_found_with_full_weights() -> None:
    base = dense(1)
    perms = {i: np.random.default_rng(100 + i).permutation(128) for i in range(4)}
    permuted = units_map(noisy(base, 7, 0.01), lambda layer, n: perms[layer])
    ev = run(permuted, base)
    assert ev.indicates_derivation is True
    # the order arm sees nothing (Zhu et al.'s phi_U false negative) ...
    assert ev.details["order_test"]["p_value"] > 1e-3
    # ... the consistency arm (up and gate agree on the same permutation) finds it
    assert ev.details["consistency_test"]["log10_p"] < -30
    assert "permuted" in ev.summary


def test_width_pruned_copy_is_detected_by_rectangular_matching() -> None:
    base = dense(1)
    keep = {i: np.sort(np.random.default_rng(i).choice(128, 96, replace=False))
            for i in range(4)}
    pruned = units_map(noisy(base, 7), lambda layer, n: keep[layer])
    ev = run(pruned, base)
    assert ev.indicates_derivation is True
    assert ev.details["order_test"]["log10_p"] < -30
    rec = ev.details["per_layer"][0]
    assert rec["units_a"] == 96 and rec["units_b"] == 128 and rec["rho"] > 0.9
    # without weights the sketches of different shapes cannot be compared
    assert run(pruned, base, weights=False).applicable is False


def test_residual_width_pruning_is_aligned_through_embeddings() -> None:
    base = dense(1)
    dims = np.sort(np.random.default_rng(5).choice(64, 48, replace=False))
    narrow: Weights = {}
    for (role, layer, e), w in noisy(base, 7, 0.01).items():
        narrow[(role, layer, e)] = w[dims] if role == "mlp.down" else w[:, dims]
    ev = run(narrow, base)
    assert ev.indicates_derivation is True
    assert "embedding alignment" in ev.details["residual_basis"]


def test_different_widths_without_shared_tokens_is_not_applicable() -> None:
    a, b = dense(1, d=64), dense(2, d=48)
    ev = MLP.compute(view(a, "a", embed=False), view(b, "b", embed=False), {})
    assert not ev.applicable and "align" in (ev.reason or "")


def test_a_copy_stops_early_with_a_corrected_p_and_an_independent_model_never_does() -> None:
    """The sequential rule (unit_matching.EarlyStop): a fine-tune is beyond doubt after a few
    layers; the p-value reported is the interim one times the number of layer pairs."""
    base = dense(1, layers=6)
    tuned = noisy(base, 7)
    quick, whole = run(tuned, base), run(tuned, base, early_stop=False)
    lc = quick.details["layers_compared"]
    assert lc["early_stop"] is True and lc["compared"] < lc["of"] == 6
    assert len(quick.details["per_layer"]) == lc["compared"]
    assert quick.indicates_derivation is whole.indicates_derivation is True
    assert whole.details["layers_compared"] == {**lc, "compared": 6, "early_stop": False}
    # the reported p: the first layers' combination, times 6
    first = run(tuned, base, early_stop=False,
                layer_map=[[i, i] for i in range(lc["compared"])])
    for arm in ("order_test", "consistency_test"):
        assert quick.details[arm]["log10_p"] == pytest.approx(
            min(0.0, first.details[arm]["log10_p"] + math.log10(6)))
    other = run(dense(2, layers=6), base)
    assert other.details["layers_compared"]["early_stop"] is False
    assert other.details["layers_compared"]["compared"] == 6


def test_dropped_layers_are_aligned_by_depth_and_still_detected() -> None:
    base = dense(1, layers=6)
    kept = [0, 1, 4, 5]
    tuned = noisy(base, 7)
    dropped: Weights = {("embed", None, None): tuned[("embed", None, None)]}
    for new, old in enumerate(kept):
        for role in ("mlp.up", "mlp.gate", "mlp.down"):
            dropped[(role, new, None)] = tuned[(role, old, None)]
    ev = run(dropped, base, early_stop=False)   # every layer pair, to see the alignment
    assert ev.indicates_derivation is True
    assert [(r["layer_a"], r["layer_b"]) for r in ev.details["per_layer"]] == \
        list(enumerate(kept))
    assert ev.details["similarity_matrix"] is not None
    explicit = run(dropped, base, layer_map=[[0, 0], [1, 1], [2, 4], [3, 5]])
    assert explicit.indicates_derivation is True
    assert explicit.details["layer_pairing"] == "explicit layer_map"


def test_a_layer_map_out_of_range_is_an_input_error() -> None:
    with pytest.raises(InputError):
        run(dense(1), dense(1), layer_map=[[0, 9]])


@pytest.mark.parametrize("glu", [True, False], ids=["glu", "no-gate"])
def test_independent_models_give_uniform_p_values_never_below_alpha(glu: bool) -> None:
    order, consistency, combined = [], [], []
    for seed in range(40):
        ev = run(dense(2 * seed, layers=2, glu=glu), dense(2 * seed + 1, layers=2, glu=glu))
        assert ev.applicable and ev.indicates_derivation is False
        assert ev.p_value is not None and ev.p_value > ALPHA
        order.append(ev.details["order_test"]["p_value"])
        consistency.append(ev.details["consistency_test"]["p_value"])
        combined.append(ev.p_value)
    assert stats.kstest(order, "uniform").pvalue > 1e-3
    assert stats.kstest(consistency, "uniform").pvalue > 1e-3
    # Bonferroni over the two arms is conservative: never more small p-values than uniform
    assert np.mean(np.array(combined) < 0.2) <= 0.2 + 3 * np.sqrt(0.2 * 0.8 / 40)


def test_sketch_path_on_independent_models_shows_nothing() -> None:
    ev = run(dense(3), dense(4), weights=False)
    assert ev.applicable and ev.indicates_derivation is False


def test_a_model_without_dense_mlp_points_to_moe_upcycling() -> None:
    base = dense(1)
    moe: Weights = {("embed", None, None): base[("embed", None, None)]}
    for (role, layer, _), w in base.items():
        if role.startswith("mlp."):
            moe[(role.replace("mlp.", "moe.expert."), layer, 0)] = w
    ev = run(moe, base)
    assert not ev.applicable and "moe_upcycling" in (ev.reason or "")


def _as_moe(ws: Weights, experts: int, seed: int) -> Weights:
    rng = np.random.default_rng(seed)
    out: Weights = {("embed", None, None): ws[("embed", None, None)]}
    for (role, layer, _), w in ws.items():
        if role.startswith("mlp."):
            for e in range(experts):
                out[(role.replace("mlp.", "moe.expert."), layer, e)] = \
                    w + rng.normal(0, 0.02, w.shape)
    return out


def test_two_moe_models_are_compared_expert_by_expert() -> None:
    parent = _as_moe(dense(1, layers=2), 3, seed=50)
    tuned = noisy(parent, 7)
    ev = run(tuned, parent)
    assert ev.indicates_derivation is True and ev.details["units"].startswith("experts")
    assert sorted({r["expert"] for r in ev.details["per_layer"]}) == [0, 1, 2]
    other = _as_moe(dense(2, layers=2), 3, seed=60)
    assert run(other, parent).indicates_derivation is False


@pytest.mark.parametrize("max_units", [24, 64])
def test_subsampled_units_still_detect_and_stay_valid(max_units: int) -> None:
    base = dense(1)
    ev = run(noisy(base, 7), base, max_units=max_units)
    assert ev.indicates_derivation is True
    assert {r["tested_units"] for r in ev.details["per_layer"]} == {max_units}
    ps = [run(dense(2 * s, layers=2), dense(2 * s + 1, layers=2),
              max_units=max_units).details["order_test"]["p_value"] for s in range(30)]
    assert min(ps) > ALPHA
    assert stats.kstest(ps, "uniform").pvalue > 1e-3
