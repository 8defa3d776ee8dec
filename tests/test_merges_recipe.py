"""The merge_recipe check: a release gate asserting a merge's recipe in the audit YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.merges import recipes as R

from tests.merge_models import perturbed, random_state, write

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("recipe")
    base = random_state(1)
    a, x = perturbed(base, 11), perturbed(base, 12)
    for name, st in {"base": base, "a": a, "x": x, "other": random_state(2),
                     "merged": R.sparse_merge(base, [a, x], [0.7, 0.3], 0.5, "ties")}.items():
        write(st, d / name)
    return d


def _audit(models: Path, max_x: float, method: str = "ties") -> str:
    return f"""
candidate: {models}/merged
expect: derived
references:
  - model: {models}/a
    name: a
  - model: {models}/x
    name: x
checks:
  merge_recipe:
    parents: {{a: {models}/a, x: {models}/x, other: {models}/other}}
    base: {models}/base
    max_weight: {{x: {max_x}}}
    method: {method}
"""


def test_recipe_gate_passes_and_fails(pytester: pytest.Pytester, models: Path) -> None:
    pytester.makefile(".audit.yaml", ok=_audit(models, 0.35))
    pytester.makefile(".audit.yaml", too_much=_audit(models, 0.2))
    pytester.makefile(".audit.yaml", wrong_method=_audit(models, 0.35, "slerp"))
    res = pytester.runpytest("-p", "no:cacheprovider", "-k", "merge_recipe",
                             "--modelprint-json", str(pytester.path / "r.json"),
                             "--modelprint-html", str(pytester.path / "r.html"))
    out = res.stdout.str()
    # ok: a and x hold; too_much: a holds (no bound on it), x fails; wrong_method: both fail
    res.assert_outcomes(passed=3, failed=3)
    assert "exceeds max_weight 0.2" in out
    assert "method is ties, not slerp" in out
    page = (pytester.path / "r.html").read_text()
    assert "weight per layer" in page and "merge_method: ties" in page


def test_relative_parent_paths_resolve_against_the_audit_file(
        pytester: pytest.Pytester, models: Path) -> None:
    sub = pytester.path / "audits"
    sub.mkdir()
    (sub / "m").symlink_to(models)
    (sub / "gate.audit.yaml").write_text("""
candidate: m/merged
expect: derived
references:
  - model: m/x
    name: x
checks:
  merge_recipe:
    parents: {a: m/a, x: m/x}
    base: m/base
    max_weight: {x: 0.35}
""")
    res = pytester.runpytest("-p", "no:cacheprovider", str(sub), "-k", "merge_recipe",
                             "--modelprint-json", str(pytester.path / "r.json"),
                             "--modelprint-html", str(pytester.path / "r.html"))
    res.assert_outcomes(passed=1)


def test_bound_on_an_unknown_parent_is_an_error(pytester: pytest.Pytester, models: Path) -> None:
    text = _audit(models, 0.3).replace("max_weight: {x: 0.3}", "max_weight: {y: 0.3}")
    pytester.makefile(".audit.yaml", bad=text)
    res = pytester.runpytest("-p", "no:cacheprovider", "-k", "merge_recipe",
                             "--modelprint-json", str(pytester.path / "r.json"),
                             "--modelprint-html", str(pytester.path / "r.html"))
    assert "not one of the parents" in res.stdout.str()
    assert res.ret != 0
