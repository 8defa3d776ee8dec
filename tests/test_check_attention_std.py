"""attention_std on fingerprints whose truth is known."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelprint.calibration.nulls import NullPanel, write_nulls
from modelprint.checks import check_names
from modelprint.checks.attention_std import CHECK
from modelprint.checks.curves import AlignmentError
from modelprint.errors import InputError
from tests.curvefp import PROJ, attention_curves, make_view, perturbed, recipe_curve


def _strict_json(ev: object) -> str:
    return json.dumps(ev.to_json(), allow_nan=False)  # type: ignore[attr-defined]


def test_registered_with_seed_options() -> None:
    assert "attention_std" in check_names() and CHECK.name == "attention_std"
    assert CHECK.strength == "weak"
    assert {"threshold", "detrended_threshold", "alpha", "layer_map"} <= set(CHECK.default_options)
    assert "false" in CHECK.description.lower()


def test_noisy_copy_scores_one_and_is_indicated() -> None:
    rng = np.random.default_rng(1)
    a = attention_curves(30, rng)
    b = {r: perturbed(c, rng) for r, c in a.items()}
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.applicable and ev.score is not None and ev.score > 0.99
    assert ev.indicates_derivation is True
    assert ev.p_value is None and "not calibrated" in ev.summary
    d = ev.details
    assert set(d["per_role"]) == set(PROJ)
    for role in PROJ:
        assert d["per_role"][role]["r_detrended"] > 0.95
        assert len(d["curves"][role]["a"]) == len(d["curves"][role]["b"]) == 30
        assert abs(float(np.mean(d["curves"][role]["a"]))) < 1e-9  # z-scored for plotting
    assert d["null"]["calibrated"] is False
    _strict_json(ev)


def test_same_recipe_independent_models_reach_the_seeds_high_r_but_are_not_indicated() -> None:
    """The seed's false-positive case: a shared shape gives r ≈ 0.9+, detrending removes it."""
    rng = np.random.default_rng(2)
    a, b = attention_curves(30, rng), attention_curves(30, rng)
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.score is not None and ev.score > 0.9  # what the seed would call evidence
    assert ev.indicates_derivation is False
    assert ev.details["r_detrended"] < 0.5
    assert "detrended" in ev.summary


def test_unrelated_random_curves_score_low() -> None:
    rng = np.random.default_rng(3)
    a = {r: rng.uniform(0.01, 0.03, 24) for r in PROJ}
    b = {r: rng.uniform(0.01, 0.03, 24) for r in PROJ}
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.score is not None and abs(ev.score) < 0.4
    assert ev.indicates_derivation is False


def test_flat_qkv_like_gemma_use_only_o_and_say_so() -> None:
    rng = np.random.default_rng(4)
    a = attention_curves(18, rng)
    # constant in the trained weights, 3e-4 relative noise after Q4/Q5 quantisation (measured)
    noise = np.random.default_rng(40)
    gemma = {r: list(1 / math.sqrt(640) * (1 + 3e-4 * noise.standard_normal(18)))
             for r in ("attn.q", "attn.k", "attn.v")}
    gemma["attn.o"] = list(recipe_curve(18, rng))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero or NaN warnings
        ev = CHECK.compute(make_view("gemma", gemma), make_view("a", a), {})
    assert ev.applicable and ev.details["informative"] == ["attn.o"]
    assert set(ev.details["flat"]) == {"attn.q", "attn.k", "attn.v"}
    assert ev.details["flat"]["attn.q"] == "candidate"
    assert ev.score == pytest.approx(ev.details["per_role"]["attn.o"]["r"])
    assert "flat" in ev.summary
    assert max(abs(v) for v in ev.details["curves"]["attn.q"]["a"]) < 1e-4  # noise not blown up
    _strict_json(ev)
    strict = CHECK.compute(make_view("gemma", gemma), make_view("a", a), {"flat_tolerance": 0.0})
    assert strict.details["informative"] == list(PROJ)  # the option is honoured


def test_all_flat_is_no_information_not_nan() -> None:
    flat = {r: [0.04] * 18 for r in PROJ}
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = CHECK.compute(make_view("flat", flat), make_view("b", attention_curves(18, rng)), {})
        self_ev = CHECK.compute(make_view("flat", flat), make_view("flat2", flat), {})
    for e in (ev, self_ev):
        assert e.applicable and e.score is None and e.indicates_derivation is None
        assert "no information" in e.summary
        _strict_json(e)
        # the reason reads well: it names the flat curves and has no empty field ("over ;")
        assert "flat (no information): Q (candidate)" in e.summary or e is self_ev
        assert not re.search(r"over\s*[;)]|\(\s*[;)]|;\s*[;)]|:\s*[,;)]", e.summary), e.summary


def test_different_depth_needs_an_explicit_alignment() -> None:
    rng = np.random.default_rng(6)
    a = attention_curves(30, rng)
    b = {r: np.delete(perturbed(c, rng), [10, 20]) for r, c in a.items()}  # two layers dropped
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert not ev.applicable and ev.indicates_derivation is None
    assert "30 vs 28" in (ev.reason or "") and "interpolat" in (ev.reason or "")
    keep = [i for i in range(30) if i not in (10, 20)]
    layer_map = [[la, lb] for lb, la in enumerate(keep)]
    ev2 = CHECK.compute(make_view("a", a), make_view("b", b), {"layer_map": layer_map})
    assert ev2.applicable and ev2.score is not None and ev2.score > 0.99
    assert ev2.details["alignment"] == layer_map
    assert ev2.details["alignment_source"] == "explicit layer_map"


@pytest.mark.parametrize("bad", [[[0, 40]], [[0]], [["0", 1]], [[-1, 0]]])
def test_bad_layer_map_is_an_input_error(bad: list[object]) -> None:
    rng = np.random.default_rng(7)
    a = attention_curves(10, rng)
    with pytest.raises(AlignmentError) as info:
        CHECK.compute(make_view("a", a), make_view("b", a), {"layer_map": bad})
    assert isinstance(info.value, InputError) and "\n" not in str(info.value)
    assert "layer_map" in str(info.value)


def test_missing_layers_are_dropped_and_reported() -> None:
    rng = np.random.default_rng(8)
    a = attention_curves(20, rng)
    b: dict[str, list[float | None]] = {r: list(perturbed(c, rng)) for r, c in a.items()}
    b["attn.o"][5] = None
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.details["missing_layers"] == {"attn.o": [[5, 5]]}
    assert ev.details["per_role"]["attn.o"]["n"] == 19
    assert ev.details["curves"]["attn.o"]["a"].__len__() == 19


def test_too_few_layers_are_never_indicated() -> None:
    rng = np.random.default_rng(9)
    a = attention_curves(6, rng)
    b = {r: perturbed(c, rng) for r, c in a.items()}
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.score is not None and ev.score > 0.99 and ev.indicates_derivation is False
    assert "min_layers" in ev.summary
    ev2 = CHECK.compute(make_view("a", a), make_view("b", b), {"min_layers": 4})
    assert ev2.details["rule"] != ev.details["rule"]


def test_threshold_is_overridable() -> None:
    rng = np.random.default_rng(10)
    a = attention_curves(30, rng)
    b = {r: perturbed(c, rng) for r, c in a.items()}
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {"threshold": 1.01})
    assert ev.threshold == 1.01 and ev.indicates_derivation is False


def _panel_file(tmp_path: Path, scores: list[float]) -> Path:
    panel = NullPanel(check="attention_std", statistic="score", scores=tuple(scores),
                      pairs=tuple((f"m{i}", f"n{i}") for i in range(len(scores))),
                      source="test panel")
    return write_nulls([panel], tmp_path / "nulls.json",
                       created="2026-01-01T00:00:00Z", generator="test")


def test_null_panel_gives_empirical_p_and_can_veto(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    a = attention_curves(30, rng)
    b = {r: perturbed(c, rng) for r, c in a.items()}
    # a null whose independent pairs all score >= this pair: the copy is not extreme
    monkeypatch.setenv("MODELPRINT_NULLS", str(_panel_file(tmp_path, [1.0] * 200)))
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.p_value == pytest.approx(1.0)
    assert ev.indicates_derivation is False
    assert ev.details["null"]["calibrated"] is True and len(ev.details["null"]["scores"]) == 200
    assert ev.details["null"]["p_floor"] == pytest.approx(1 / 201)


def test_null_panel_extreme_score_keeps_the_indication(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    a = attention_curves(30, rng)
    b = {r: perturbed(c, rng) for r, c in a.items()}
    scores = list(np.linspace(-0.2, 0.95, 199))
    monkeypatch.setenv("MODELPRINT_NULLS", str(_panel_file(tmp_path, scores)))
    ev = CHECK.compute(make_view("a", a), make_view("b", b), {})
    assert ev.p_value == pytest.approx(1 / 200)
    assert ev.indicates_derivation is True
    assert "199 independent pairs" in ev.summary


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_symmetric_and_one_against_itself(data: st.DataObject) -> None:
    n = data.draw(st.integers(8, 40))
    fixed = st.lists(st.floats(0.001, 1.0, allow_nan=False), min_size=n, max_size=n)
    a = {r: data.draw(fixed) for r in PROJ}
    b = {r: data.draw(fixed) for r in PROJ}
    va, vb = make_view("a", a), make_view("b", b)
    ab, ba = CHECK.compute(va, vb, {}), CHECK.compute(vb, va, {})
    if ab.score is None:
        assert ba.score is None
    else:
        assert ba.score == pytest.approx(ab.score, abs=1e-12)
        assert ab.indicates_derivation == ba.indicates_derivation
    self_ev = CHECK.compute(va, make_view("a2", a), {})
    if self_ev.score is not None:  # None only when every curve is flat
        assert self_ev.score == pytest.approx(1.0, abs=1e-12)
