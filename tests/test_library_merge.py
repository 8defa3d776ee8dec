"""identify names every parent of a merge found in the library, with its mixture weight."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from benchmarks.merges import recipes as R

from modelprint.cli import main
from tests.merge_models import perturbed, random_state, write


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("library-merge")
    base = random_state(1)
    a, b = perturbed(base, 11), perturbed(base, 12)
    states = {"base": base, "a": a, "b": b, "other": random_state(2),
              "merge": R.linear([a, b], [0.7, 0.3]),
              "tuned_a": perturbed(a, 21, rel=0.02)}
    return {k: write(v, d / k) for k, v in states.items()}


def _identify(tmp_path: Path, candidate: Path, library: Path,
              capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict, str]:
    out, html = tmp_path / "id.json", tmp_path / "id.html"
    capsys.readouterr()
    code = main(["identify", str(candidate), "-L", str(library), "--json", str(out),
                 "--html", str(html)])
    return (code, capsys.readouterr().out, json.loads(out.read_text())["library"][0],
            html.read_text())


def test_identify_names_both_parents_of_a_merge_with_their_weights(
        tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    lib = tmp_path / "lib"
    # the base both parents were tuned from, and an unrelated model, are offered too
    entries = [models[k] for k in ("base", "a", "b", "other")]
    assert main(["library", "-L", str(lib), "add", *map(str, entries)]) == 0
    code, text, doc, html = _identify(tmp_path, models["merge"], lib, capsys)
    assert code == 1
    assert doc["verdict"] == "derived"
    merge = doc["merge"]
    assert merge["is_merge"]
    weights = {p["name"]: p["weight"]["value"] for p in merge["parents"] if p["is_parent"]}
    assert set(weights) == {"a", "b"}
    assert abs(weights["a"] - 0.7) < 0.05 and abs(weights["b"] - 0.3) < 0.05
    found = re.search(r"merge of a \((0\.\d\d) ± 0\.\d\d\) and b \((0\.\d\d) ± 0\.\d\d\)",
                      doc["summary"])
    assert found, doc["summary"]
    assert found.group(0) in text and found.group(0) in html
    by_name = {m["name"]: m for m in doc["matches"]}
    assert by_name["a"]["parent"] and by_name["b"]["parent"]
    assert by_name["a"]["merge_weight"]["value"] == pytest.approx(weights["a"])
    assert by_name["other"]["merge_weight"] is None and not by_name["other"]["parent"]
    assert by_name["base"]["merge_weight"] is None
    assert "merge 0." in text  # the table's relation column shows each parent's weight


def test_a_fine_tune_among_its_relatives_is_not_called_a_merge(
        tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Its parent, the parent's base and a sibling are all related and of its shape; mixing
    them explains no more of it than its parent alone, so no merge is claimed."""
    lib = tmp_path / "lib"
    entries = [models[k] for k in ("base", "a", "b", "other")]
    assert main(["library", "-L", str(lib), "add", *map(str, entries)]) == 0
    code, text, doc, _ = _identify(tmp_path, models["tuned_a"], lib, capsys)
    assert code == 1
    assert doc["merge"] is None or not doc["merge"]["is_merge"]
    assert "merge of" not in doc["summary"] and "merge of" not in text
    assert {m["name"] for m in doc["matches"] if m["parent"]} >= {"a"}
