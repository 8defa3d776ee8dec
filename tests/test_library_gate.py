"""The originality gate in pytest: ``library: PATH`` in an audit file.

A run with a derived candidate fails on ``::library::original`` and on the item of the
library model it derives from, keeps the numbers as JUnit properties, and the HTML report
shows the closest library models; an unrelated candidate passes; a bad library path is a
collection error naming file:line (exit 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelprint.fingerprint.model import Fingerprint
from modelprint.library import ModelLibrary
from tests.library_models import write_model
from tests.test_plugin import _warm_imports, run

__all__ = ["_warm_imports"]


@pytest.fixture
def setup(pytester: pytest.Pytester) -> dict[str, Path]:
    d = pytester.path / "models"
    d.mkdir()
    models = {
        "base": write_model(d / "base.fp.json", 1),
        "other": write_model(d / "other.fp.json", 3),
        "tuned": write_model(d / "tuned.fp.json", 2, parent_seed=1),
        "fresh": write_model(d / "fresh.fp.json", 5),
    }
    with ModelLibrary(pytester.path / "lib", create=True) as lib:
        for name in ("base", "other"):
            lib.add(Fingerprint.load(models[name]), name=name)
    return models


def test_gate_fails_for_a_derived_candidate(pytester: pytest.Pytester,
                                            setup: dict[str, Path]) -> None:
    pytester.makefile(".audit.yaml", release="candidate: models/tuned.fp.json\n"
                                             "library: lib\nexpect: independent\n")
    result, items, _ = run(pytester)
    assert result.ret == 1
    gate = items["release.audit.yaml.library::original"]
    assert gate["status"] == "failed" and "base" in gate["message"]
    assert gate["props"]["entries"] == "2" and gate["props"]["parents"] == "1"
    match = items["release.audit.yaml.library::base"]
    assert match["status"] == "failed"
    assert match["props"]["verdict"] == "derived" and float(match["props"]["p_value"]) < 1e-6
    assert "release.audit.yaml.library::other" not in items  # unrelated: no item
    html = (pytester.path / "out" / "audit.html").read_text()
    assert "Closest library models" in html and "base" in html


def test_gate_passes_for_an_unrelated_candidate_beside_references(
        pytester: pytest.Pytester, setup: dict[str, Path]) -> None:
    pytester.makefile(".audit.yaml", release="candidate: models/fresh.fp.json\n"
                                             "library: lib\n"
                                             "references:\n  - models/other.fp.json\n")
    result, items, data = run(pytester)
    assert result.ret == 0
    assert items["release.audit.yaml.library::original"]["status"] == "passed"
    assert "release.audit.yaml.other::verdict" in items
    assert data is not None and data["library"][0]["verdict"] in ("original", "inconclusive")
    assert [p["reference"]["name"] for p in data["pairs"]] == ["other"]


def test_expect_derived_needs_a_parent(pytester: pytest.Pytester,
                                       setup: dict[str, Path]) -> None:
    pytester.makefile(".audit.yaml", release="candidate: models/fresh.fp.json\n"
                                             "library: lib\nexpect: derived\n")
    result, items, _ = run(pytester)
    assert result.ret == 1
    assert items["release.audit.yaml.library::derived"]["status"] == "failed"


def test_bad_library_is_a_collection_error(pytester: pytest.Pytester,
                                           setup: dict[str, Path]) -> None:
    pytester.makefile(".audit.yaml", release="candidate: models/tuned.fp.json\n"
                                             "library: nowhere\n")
    result, _, _ = run(pytester)
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*release.audit.yaml:2*not a modelprint library*"])
