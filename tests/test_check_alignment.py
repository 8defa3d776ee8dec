"""embedding_alignment, attention_cka and layer alignment on fingerprints with known truth.

A "parent" is a random model with embeddings and Q/K weights; derivatives are built from it
the way real ones are (noise, a permuted residual stream, dropped or duplicated layers), and
independent models are fresh draws that share only the vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelprint.arch.base import ArchInfo
from modelprint.calibration.nulls import NullPanel, write_nulls
from modelprint.checks.attention_cka import CHECK as CKA
from modelprint.checks.base import ModelView
from modelprint.checks.cka import unbiased_cka
from modelprint.checks.embedding_alignment import CHECK as EMB
from modelprint.checks.layer_alignment import align_layers
from modelprint.fingerprint.model import Fingerprint, ModelInfo
from modelprint.fingerprint.sketches import (
    embedding_entry,
    projection_entry,
    slot_key,
    token_sample,
)

D, V, LAYERS = 48, 600, 6
VOCAB = [f"tok{i}" for i in range(V)]


def parent(seed: int, layers: int = LAYERS) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    # low-rank structure in the embeddings, as trained embeddings have
    emb = rng.normal(size=(V, 8)) @ rng.normal(size=(8, D)) + 0.3 * rng.normal(size=(V, D))
    return {"embed": emb,
            "q": [rng.normal(size=(D, D)) for _ in range(layers)],
            "k": [rng.normal(size=(D // 2, D)) for _ in range(layers)]}


def view(m: dict[str, object], name: str) -> ModelView:
    emb = np.asarray(m["embed"])
    qs, ks = m["q"], m["k"]
    assert isinstance(qs, list) and isinstance(ks, list)
    sample = token_sample(VOCAB)
    ids = [i for _, i in sample]
    sk = {"embedding": embedding_entry([t for t, _ in sample], emb[ids]),
          "projection": {**{slot_key("attn.q", i, None): projection_entry(q)
                            for i, q in enumerate(qs)},
                         **{slot_key("attn.k", i, None): projection_entry(k)
                            for i, k in enumerate(ks)}}}
    arch = ArchInfo(family="llama", num_layers=len(qs), hidden_size=emb.shape[1], num_heads=4,
                    num_kv_heads=2, head_dim=emb.shape[1] // 4)
    return ModelView(Fingerprint(model=ModelInfo(reference=name, kind="fingerprint"),
                                 architecture=arch, sketches=sk))


def derive(m: dict[str, object], seed: int, noise: float = 0.3, permute: bool = False,
           layers: list[int] | None = None) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(D) if permute else np.arange(D)
    sign = rng.choice([-1.0, 1.0], size=D) if permute else np.ones(D)
    emb = np.asarray(m["embed"])
    qs, ks = m["q"], m["k"]
    assert isinstance(qs, list) and isinstance(ks, list)
    pick = layers if layers is not None else list(range(len(qs)))

    def tweak(w: np.ndarray) -> np.ndarray:
        return (w + noise * rng.normal(size=w.shape) * w.std())[:, perm] * sign

    return {"embed": tweak(emb), "q": [tweak(qs[i]) for i in pick],
            "k": [tweak(ks[i]) for i in pick]}


@pytest.fixture(scope="module")
def cka_panel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A null panel of attention_cka scores from 12 independent pairs of this module's kind."""
    path = tmp_path_factory.mktemp("nulls") / "nulls.json"
    scores, names = [], []
    for i in range(12):
        ev = CKA.compute(view(parent(100 + i), f"a{i}"), view(parent(200 + i), f"b{i}"), {})
        assert ev.score is not None
        scores.append(ev.score)
        names.append((f"a{i}", f"b{i}"))
    write_nulls([NullPanel(check="attention_cka", statistic="score", scores=tuple(scores),
                           pairs=tuple(names), source="independent random parents")],
                path, created="now", generator="tests/test_check_alignment.py")
    return path


@pytest.fixture()
def calibrated(cka_panel_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPRINT_NULLS", str(cka_panel_file))
    return cka_panel_file


@pytest.fixture()
def uncalibrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPRINT_NULLS", str(tmp_path / "none.json"))


def test_cka_is_one_for_a_copy_and_invariant_to_output_rotations() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 20))
    rot, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert unbiased_cka(x, x) == pytest.approx(1.0)
    assert unbiased_cka(x, 3.0 * x @ rot) == pytest.approx(1.0)
    assert abs(unbiased_cka(x, rng.normal(size=(50, 20))) or 0) < 0.1


def test_plain_derivative_keeps_residual_order() -> None:
    p = parent(1)
    ev = EMB.compute(view(derive(p, 2), "ft"), view(p, "base"), {})
    assert ev.indicates_derivation is True and ev.p_value is not None and ev.p_value < 1e-12
    assert ev.details["identity_fraction"] > 0.9


def test_permuted_derivative_passes_order_test_but_cka_catches_it(calibrated: Path) -> None:
    p = parent(1)
    d = view(derive(p, 2, permute=True), "perm")
    assert EMB.compute(d, view(p, "base"), {}).indicates_derivation is False
    ev = CKA.compute(d, view(p, "base"), {})
    assert ev.indicates_derivation is True
    assert ev.score is not None and ev.score > 0.5
    assert ev.p_value is not None and ev.p_value < 1e-6
    null = ev.details["null"]
    assert null["calibrated"] is True and null["n"] == 12
    assert null["p_empirical"] == pytest.approx(1 / 13)  # the panel's floor
    assert "vs 12 independent pairs" in ev.summary


def test_independent_models_are_not_called_derived(calibrated: Path) -> None:
    for seed in range(3):
        a, b = view(parent(10 + seed), "a"), view(parent(20 + seed), "b")
        assert EMB.compute(a, b, {}).indicates_derivation is False
        ev = CKA.compute(a, b, {})
        assert ev.indicates_derivation is False
        assert ev.score is not None and abs(ev.score) < 0.05
        assert ev.p_value is not None and ev.p_value > 1e-3


def test_without_a_null_panel_cka_shows_its_numbers_but_cannot_decide(uncalibrated: None
                                                                       ) -> None:
    """No shuffle null stands in for a panel: it is invalid after a fitted alignment."""
    p = parent(1)
    ev = CKA.compute(view(derive(p, 2, permute=True), "perm"), view(p, "base"), {})
    assert ev.applicable and ev.indicates_derivation is None and ev.p_value is None
    assert ev.score is not None and ev.score > 0.5
    assert ev.reason is not None and ev.reason.startswith("not calibrated")
    assert ev.details["null"]["calibrated"] is False
    assert "cannot decide" in ev.summary


def test_the_panels_most_similar_independent_pair_is_unremarkable(calibrated: Path) -> None:
    """A score no higher than what independent pairs reach gives a large p (a shuffle of the
    fitted alignment would call it z > 20 on trained models)."""
    from modelprint.calibration.nulls import null_scores, predictive_p

    panel = null_scores("attention_cka", "score")
    assert panel is not None
    top = max(panel.scores)
    fit = predictive_p(top, panel, fisher_z=True)
    assert fit is not None and 1e-3 < fit[1] < 0.5


def test_layer_drop_is_aligned_and_reported(calibrated: Path) -> None:
    p = parent(1, layers=8)
    kept = [0, 1, 2, 5, 6, 7]
    ev = CKA.compute(view(derive(p, 3, layers=kept), "dropped"), view(p, "base"), {})
    assert ev.indicates_derivation is True
    assert [tuple(x) for x in ev.details["layer_map"]] == list(enumerate(kept))
    assert "candidate layers 0-2 <- reference layers 0-2" in ev.details["layer_alignment"]


def test_dp_explains_depth_up_scaling_with_duplicated_layers() -> None:
    # SOLAR: 8-layer parent, candidate = layers 0-5 then 2-7 (12 layers)
    truth = list(range(6)) + list(range(2, 8))
    rng = np.random.default_rng(0)
    sim = 0.05 * rng.random((12, 8))
    for i, j in enumerate(truth):
        sim[i, j] = 0.9
    res = align_layers(sim)
    assert [j for _, j in res.mapping] == truth
    assert res.describe() == ("candidate layers 0-5 <- reference layers 0-5; "
                              "candidate layers 6-11 <- reference layers 2-7")


def test_no_shared_tokens_and_different_widths_is_not_applicable() -> None:
    a = view(parent(1), "a")
    b = view(parent(2), "b")
    b.fingerprint.sketches["embedding"]["tokens"] = [f"x{i}" for i in range(V)]
    b.fingerprint.architecture = ArchInfo(family="llama", num_layers=LAYERS, hidden_size=64,
                                          num_heads=4, num_kv_heads=2, head_dim=16)
    assert not EMB.compute(a, b, {}).applicable
    assert not CKA.compute(a, b, {}).applicable


def test_uncalibrated_layer_alignment_is_offered_only_when_far_above_independent_pairs(
        uncalibrated: None) -> None:
    """Without a panel the check cannot decide, but a layer drop's alignment (mean CKA ~0.9)
    is still handed to the per-layer checks; an independent pair's alignment is not."""
    p = parent(1, layers=8)
    kept = [0, 1, 2, 5, 6, 7]
    ev = CKA.compute(view(derive(p, 3, layers=kept), "dropped"), view(p, "base"), {})
    assert ev.indicates_derivation is None
    assert ev.details["alignment_trusted"] is True
    assert [tuple(x) for x in ev.details["layer_map"]] == list(enumerate(kept))
    other = CKA.compute(view(parent(30, layers=6), "a"), view(p, "base"), {})
    assert other.details["alignment_trusted"] is False


def test_engine_compares_seed_curves_over_the_trusted_alignment(tmp_path: Path,
                                                                 uncalibrated: None) -> None:
    """Different depths: the seed statistic is computed over attention_cka's layer map (not
    interpolated) even when no null panel lets attention_cka itself decide."""
    from modelprint.engine import Engine, Target

    p = parent(1, layers=8)
    kept = [0, 1, 2, 5, 6, 7]
    paths = {}
    for name, m in (("base", p), ("dropped", derive(p, 3, layers=kept))):
        fp = view(m, name).fingerprint
        stds = {key: [float(np.std(w, ddof=1)) for w in m[key]] for key in ("q", "k")}
        fp.curves = {"attn.q": {"std": stds["q"]}, "attn.k": {"std": stds["k"]}}
        paths[name] = tmp_path / f"{name}.fp.json"
        fp.save(paths[name])
    engine = Engine(offline=True)
    pair = engine.pair(Target(str(paths["dropped"]), name="dropped"),
                       Target(str(paths["base"]), name="base"))
    assert engine.layer_map(pair.candidate, pair.reference) == [list(x) for x in
                                                               enumerate(kept)]
    ev = pair.evidence("attention_std")
    assert ev.applicable, ev.reason


def test_an_untrusted_layer_alignment_is_not_stated_as_a_finding(uncalibrated: None) -> None:
    ev = CKA.compute(view(parent(30, layers=6), "a"), view(parent(1, layers=8), "base"), {})
    assert ev.details["alignment_trusted"] is False
    assert "candidate layers" not in ev.summary and "not trusted" in ev.summary
    assert ev.details["layer_alignment"].startswith("candidate layers")  # kept for the reader
