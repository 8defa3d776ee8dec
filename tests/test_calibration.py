"""Null panels: the shipped file, the format, empirical p-values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from modelprint.calibration import (
    CalibrationFileError,
    NullPanel,
    empirical_p,
    load_nulls,
    null_scores,
    predictive_p,
    write_nulls,
)
from modelprint.calibration.nulls import default_path
from modelprint.errors import InputError


def _panel(scores: list[float], **kw: object) -> NullPanel:
    return NullPanel(check="attention_std", statistic="score", scores=tuple(scores),
                     pairs=tuple((f"a{i}", f"b{i}") for i in range(len(scores))),
                     source="unit test", **kw)  # type: ignore[arg-type]


def test_shipped_file_is_valid_and_holds_no_invented_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELPRINT_NULLS", raising=False)
    path = default_path()
    assert path.name == "nulls.json" and path.exists()
    panels = load_nulls(str(path))
    # real panels come only from the lineage zoo; until then, none (or only labelled ones)
    assert all(p.source and len(p.pairs) == p.size for p in panels.values())
    if not panels:
        assert null_scores("attention_std", "score") is None


def test_empirical_p_formula_and_floor() -> None:
    panel = _panel([0.1, 0.5, 0.9, 0.95])
    assert empirical_p(0.99, panel) == pytest.approx(1 / 5) == panel.floor
    assert empirical_p(0.9, panel) == pytest.approx(3 / 5)  # ties count against the score
    assert empirical_p(-1.0, panel) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        empirical_p(float("nan"), panel)


def test_predictive_p_is_uniform_when_the_null_is_normal() -> None:
    """A new draw from the panel's own (normal, atanh-scale) distribution: the t-prediction
    p-value is exactly uniform, including in the tail the family-wise level needs."""
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(4000):
        z = rng.normal(0.1, 0.05, size=16)
        panel = _panel(list(np.tanh(z[:15])))
        fit = predictive_p(float(np.tanh(z[15])), panel, fisher_z=True)
        assert fit is not None
        ps.append(fit[1])
    assert stats.kstest(ps, "uniform").pvalue > 1e-3
    assert np.mean(np.array(ps) < 0.01) < 0.01 + 3 * np.sqrt(0.01 * 0.99 / 4000)


def test_predictive_p_goes_below_the_empirical_floor_and_refuses_tiny_panels() -> None:
    panel = _panel([0.02, 0.05, 0.03, 0.08, 0.04, 0.06])
    fit = predictive_p(0.9, panel, fisher_z=True)
    assert fit is not None and fit[1] < 1e-4 < panel.floor and fit[0] > 10
    low = predictive_p(0.0, panel, fisher_z=True)
    assert low is not None and low[1] > 0.9
    assert predictive_p(0.9, _panel([0.1, 0.2, 0.3, 0.4])) is None  # fewer than 5 scores
    assert predictive_p(0.9, _panel([0.1] * 6)) is None  # no spread
    with pytest.raises(ValueError):
        predictive_p(float("inf"), panel)


def test_write_and_read_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p1 = _panel([0.2, 0.4], method="two seeds of one recipe", provisional=True)
    p2 = NullPanel(check="layernorm", statistic="vector_centred_r", scores=(0.01,),
                   pairs=(("x", "y"),), source="zoo")
    path = write_nulls([p1, p2], tmp_path / "n.json", created="2026-01-01T00:00:00Z",
                       generator="test")
    monkeypatch.setenv("MODELPRINT_NULLS", str(path))
    got = null_scores("attention_std", "score")
    assert got == p1 and got.provisional
    assert null_scores("layernorm", "vector_centred_r") == p2
    assert null_scores("layernorm", "score") is None
    doc = json.loads(path.read_text())
    assert doc["format"] == "modelprint.nulls/1" and doc["generator"] == "test"
    assert p1.to_json()["p_floor"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("doc, cause", [
    ({"format": "other"}, "format"),
    ({"format": "modelprint.nulls/1", "panels": []}, "panels"),
    ({"format": "modelprint.nulls/1", "panels": {"c": {"s": {"scores": [], "pairs": [],
                                                             "source": "x"}}}}, "non-empty"),
    ({"format": "modelprint.nulls/1", "panels": {"c": {"s": {"scores": [0.1, 0.2],
                                                             "pairs": [["a", "b"]],
                                                             "source": "x"}}}}, "pair"),
    ({"format": "modelprint.nulls/1", "panels": {"c": {"s": {"scores": [0.1],
                                                             "pairs": [["a", "b"]]}}}}, "source"),
])
def test_malformed_files_are_one_line_input_errors(tmp_path: Path, doc: object,
                                                   cause: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CalibrationFileError) as info:
        load_nulls(str(path))
    msg = str(info.value)
    assert isinstance(info.value, InputError) and "\n" not in msg
    assert str(path) in msg and cause in msg


def test_non_finite_scores_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"format": "modelprint.nulls/1", "panels": {"c": {"s": '
                    '{"scores": [NaN], "pairs": [["a", "b"]], "source": "x"}}}}')
    with pytest.raises(CalibrationFileError, match="finite"):
        load_nulls(str(path))


def test_unreadable_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(CalibrationFileError, match=r"broken\.json"):
        load_nulls(str(path))
