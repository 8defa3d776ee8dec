"""Merge decomposition on merges with known recipes: weights, method, unrelated parents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmarks.merges import recipes as R

from modelprint.cli import main
from modelprint.merges import decompose
from modelprint.models import load_model
from tests.merge_models import perturbed, random_state, write


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("merges")
    base = random_state(1)
    a, b, c = perturbed(base, 11), perturbed(base, 12), perturbed(base, 13)
    other = random_state(2)
    states = {
        "base": base, "a": a, "b": b, "c": c, "other": other,
        "linear73": R.linear([a, b], [0.7, 0.3]),
        "linear3": R.linear([a, b, c], [0.5, 0.3, 0.2]),
        "slerp": R.slerp(base, other, 0.35),
        "task": R.task_arithmetic(base, [a, b], [0.6, 0.8]),
        "ties": R.sparse_merge(base, [a, b], [0.6, 0.4], 0.5, "ties"),
        "ties3": R.sparse_merge(base, [a, b, c], [0.4, 0.3, 0.3], 0.5, "ties"),
        "dare_ties": R.sparse_merge(base, [a, b], [0.6, 0.4], 0.6, "dare_ties", seed=3),
        "dare_linear": R.sparse_merge(base, [a, b], [0.6, 0.4], 0.4, "dare_linear", seed=4),
        "gradient": R.linear([a, b], [[0.9, 0.7, 0.3, 0.1], [0.1, 0.3, 0.7, 0.9]]),
        "linear_ft": perturbed(R.linear([a, b], [0.7, 0.3]), 99, rel=0.01),
    }
    return {k: write(v, d / k) for k, v in states.items()}


def _view(path: Path):
    return load_model(str(path), weights=True, use_cache=False)


def _fit(zoo: dict[str, Path], cand: str, parents: list[str], base: str | None = None,
         **kw: object):
    return decompose(_view(zoo[cand]), [_view(zoo[p]) for p in parents],
                     _view(zoo[base]) if base else None, names=parents, **kw)


def _weights(d) -> list[float]:
    return [p.weight.value for p in d.parents]


def test_linear_two_parents_and_an_unrelated_one(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "linear73", ["a", "b", "other"])
    assert d.method == "linear"
    assert np.allclose(_weights(d), [0.7, 0.3, 0.0], atol=0.05)
    assert [p.is_parent for p in d.parents] == [True, True, False]
    assert d.parents[2].alone < 0.05          # an unrelated model explains ~nothing alone
    assert "other is not a parent" in d.summary
    assert d.parents[0].weight.sd < 0.05       # every weight has an uncertainty


def test_linear_three_parents(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "linear3", ["a", "b", "c"])
    assert np.allclose(_weights(d), [0.5, 0.3, 0.2], atol=0.05)
    assert all(p.is_parent for p in d.parents)


def test_slerp_is_named_and_t_recovered(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "slerp", ["base", "other", "a"])
    assert d.method == "slerp"
    assert np.allclose(_weights(d), [0.65, 0.35, 0.0], atol=0.05)
    assert "merge_method: slerp" in d.mergekit_yaml and "t: 0.35" in d.mergekit_yaml


def test_linear_merge_is_not_called_slerp(zoo: dict[str, Path]) -> None:
    # parents at a wide angle, merged on a straight line: slerp must not win
    lin = _fit(zoo, "linear73", ["a", "b"])
    assert lin.method == "linear"


def test_task_arithmetic_needs_and_uses_the_base(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "task", ["a", "b", "other"], base="base")
    assert d.method == "task_arithmetic"
    assert np.allclose(_weights(d), [0.6, 0.8, 0.0], atol=0.05)
    assert d.base_weight is not None and abs(d.base_weight.value + 0.4) < 0.05
    without = _fit(zoo, "task", ["a", "b"])
    assert "unexplained" in without.method_note and "--base" in without.method_note


@pytest.mark.parametrize(("name", "weights", "density"), [
    ("ties", [0.6, 0.4], 0.5), ("dare_ties", [0.6, 0.4], 0.6),
    ("dare_linear", [0.6, 0.4], 0.4)])
def test_sparsified_merges(zoo: dict[str, Path], name: str, weights: list[float],
                           density: float) -> None:
    d = _fit(zoo, name, ["a", "b", "other"], base="base")
    assert d.method == name
    assert np.allclose(_weights(d), [*weights, 0.0], atol=0.05)
    assert d.density is not None and abs(d.density.value - density) < 0.05
    assert not d.parents[2].is_parent


def test_three_parent_ties(zoo: dict[str, Path]) -> None:
    # entries where different subsets survived carry different coefficients: the weights
    # must come from the pairwise shares, not from one fit over every shared entry
    d = _fit(zoo, "ties3", ["a", "b", "c", "other"], base="base")
    assert d.method == "ties"
    assert np.allclose(_weights(d), [0.4, 0.3, 0.3, 0.0], atol=0.05)


def test_gradient_per_layer(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "gradient", ["a", "b"])
    truth = [0.9, 0.7, 0.3, 0.1]
    assert [round(d.per_layer[i][0].value, 2) for i in range(4)] == pytest.approx(truth, abs=0.05)
    assert d.gradient and "layers 0-1 mostly a" in d.summary
    assert "weight: [0.9, 0.7, 0.3, 0.1]" in d.mergekit_yaml


def test_merge_then_fine_tuned(zoo: dict[str, Path]) -> None:
    d = _fit(zoo, "linear_ft", ["a", "b", "other"])
    assert d.method == "linear"
    assert np.allclose(_weights(d), [0.7, 0.3, 0.0], atol=0.05)
    assert not d.parents[2].is_parent


def test_fingerprint_sketches_alone_give_the_weights(zoo: dict[str, Path]) -> None:
    # (how much less precise than weights is measured on SmolLM2 in benchmarks/merges)
    s = _fit(zoo, "linear_ft", ["a", "b", "other"], use_weights=False)
    assert s.source == "sketches"
    assert np.allclose(_weights(s), [0.7, 0.3, 0.0], atol=0.05)
    assert not s.parents[2].is_parent


def test_cli_json_html_and_bad_input(zoo: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, page = tmp_path / "d.json", tmp_path / "d.html"
    rc = main(["decompose", str(zoo["ties"]), str(zoo["a"]), str(zoo["b"]), "--base",
               str(zoo["base"]), "--json", str(out), "--html", str(page), "--verdicts"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert set(doc["lineage_verdicts"]) == {str(zoo["a"]), str(zoo["b"])}
    assert doc["method"] == "ties" and doc["format"] == "modelprint.decomposition/1"
    assert "merge_method: ties" in doc["mergekit_yaml"]
    assert "<svg" in page.read_text()
    assert "TIES" in capsys.readouterr().out
    rc = main(["decompose", str(zoo["ties"]), str(tmp_path / "missing")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
