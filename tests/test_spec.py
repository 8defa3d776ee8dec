"""The audit-file loader: what a user writes, what they get back, and where errors point."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from modelprint.errors import AuditSpecError, InputError
from modelprint.spec import default_name, is_audit_file, load_audit


class _FakeCheck:
    name: ClassVar[str] = "curvy"
    default_options: ClassVar[dict[str, Any]] = {
        "threshold": 0.9, "layers": 4, "detrend": False, "mode": "pearson", "roles": ["attn.q"],
    }


class _Other:
    name: ClassVar[str] = "other"
    default_options: ClassVar[dict[str, Any]] = {}


REGISTRY = {"curvy": _FakeCheck(), "other": _Other()}


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "cand.fp.json").write_text("{}")
    (tmp_path / "base.fp.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    return tmp_path


def write(path: Path, text: str) -> Path:
    f = path / "x.audit.yaml"
    f.write_text(text)
    return f


def error_of(path: Path, text: str) -> AuditSpecError:
    with pytest.raises(AuditSpecError) as info:
        load_audit(write(path, text), registry=REGISTRY)
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)
    return info.value


def test_minimal_audit_defaults(models: Path) -> None:
    spec = load_audit(write(models, "candidate: cand.fp.json\nreferences:\n"
                                    "  - model: base.fp.json\n"), registry=REGISTRY)
    assert spec.expect == "independent"
    assert spec.checks is None and spec.alpha is None
    assert spec.candidate.base_dir == models.resolve()
    assert [r.name for r in spec.references] == ["base"]
    assert spec.references[0].line == 3


def test_full_audit_with_options_and_float_written_with_exponent(models: Path) -> None:
    spec = load_audit(write(models, """
candidate: ./cand.fp.json
references:
  - model: base.fp.json
    name: the-base
  - sub/../base.fp.json
expect: derived
alpha: 1e-3
checks:
  other: {}
  curvy: {threshold: 5e-1, layers: 3, detrend: true, roles: [attn.k]}
"""), registry=REGISTRY)
    assert spec.expect == "derived"
    assert spec.alpha == pytest.approx(1e-3)
    assert [r.name for r in spec.references] == ["the-base", "base"]
    # registry order, user values only (the engine merges defaults)
    assert list(spec.checks or {}) == ["curvy", "other"]
    assert spec.checks == {"curvy": {"threshold": 0.5, "layers": 3, "detrend": True,
                                     "roles": ["attn.k"]}, "other": {}}
    assert spec.check_lines["curvy"] == 11


def test_loader_leaves_global_safeloader_alone(models: Path) -> None:
    load_audit(write(models, "candidate: cand.fp.json\nreferences: [base.fp.json]\n"
                             "alpha: 1e-3\n"), registry=REGISTRY)
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}


@pytest.mark.parametrize(("text", "line", "cause"), [
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nexpectt: derived\n", 3,
     "unknown key 'expectt'"),
    ("candidate: cand.fp.json\nreferences:\n  - model: base.fp.json\n    nmae: x\n", 4,
     "unknown key 'nmae'"),
    ("candidate: cand.fp.json\nreferences: base.fp.json\n", 2, "non-empty list"),
    ("candidate: [a, b]\nreferences: [base.fp.json]\n", 1, "must be text"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nexpect: maybe\n", 3,
     "'expect' must be one of"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nalpha: 2\n", 3, "(0, 1)"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nalpha: small\n", 3,
     "must be a number"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\ncandidate: base.fp.json\n", 3,
     "duplicate key 'candidate' (first given on line 1)"),
    ("candidate: cand.fp.json\nreferences:\n  - model: nowhere.gguf\n", 3,
     "model 'nowhere.gguf' not found"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nchecks: {nope: {}}\n", 3,
     "unknown check 'nope'"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nchecks:\n  curvy:\n"
     "    treshold: 0.5\n", 5, "unknown option 'treshold' for check 'curvy'"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nchecks:\n  curvy:\n"
     "    threshold: high\n", 5, "option curvy.threshold must be a number"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nchecks:\n  curvy: {layers: 2.5}\n",
     4, "must be an integer"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json]\nchecks:\n  curvy: {detrend: 1}\n",
     4, "must be true or false"),
    ("candidate: cand.fp.json\nreferences:\n  - {model: base.fp.json, name: a}\n"
     "  - {model: cand.fp.json, name: a}\n", 4, "reference name 'a' already used on line 3"),
    ("candidate: cand.fp.json\nreferences: [{model: base.fp.json, name: 'a b'}]\n", 2,
     "may only use"),
    ("candidate: cand.fp.json\nreferences: [base.fp.json\n", 3, "not valid YAML"),
    ("candidate: cand.fp.json\n  references: x\n", 2, "not valid YAML"),
    ("- just\n- a list\n", 1, "an audit file is a mapping"),
    ("references: [base.fp.json]\n", 1, "missing required key 'candidate'"),
    ("candidate: 2020-01-01\nreferences: [base.fp.json]\n", 1, "unsupported value"),
])
def test_errors_name_file_line_and_cause(models: Path, text: str, line: int, cause: str) -> None:
    err = error_of(models, text)
    assert err.where == f"{models / 'x.audit.yaml'}:{line}"
    assert cause in err.cause


def test_empty_file(models: Path) -> None:
    err = error_of(models, "# nothing here\n")
    assert "empty" in err.cause


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AuditSpecError, match="file not found"):
        load_audit(tmp_path / "absent.audit.yaml", registry=REGISTRY)


def test_hub_references_are_not_looked_up_on_disk(models: Path) -> None:
    spec = load_audit(write(models, "candidate: cand.fp.json\nreferences:\n"
                                    "  - model: hf:Qwen/Qwen2.5-14B@main\n"), registry=REGISTRY)
    assert spec.references[0].name == "Qwen2.5-14B"


@pytest.mark.parametrize(("ref", "name"), [
    ("hf:org/Some Model@abc", "Some-Model"),
    ("../models/smol.Q4_1.gguf", "smol.Q4_1"),
    ("x/base.fp.json", "base"),
    ("release/", "release"),
    ("model.safetensors", "model"),
])
def test_default_names(ref: str, name: str) -> None:
    assert default_name(ref) == name


def test_suffixes() -> None:
    assert is_audit_file("a.audit.yaml") and is_audit_file("b.audit.yml")
    assert not is_audit_file("a.yaml")
