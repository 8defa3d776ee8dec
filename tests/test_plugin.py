"""The pytest plugin, driven the way a user drives it: real pytest runs (pytester) over audit
files and tiny fingerprint models whose ancestry is known.

Outcomes are read from ``--junitxml`` (pytest's own record of each item), which also shows
that the numbers travel in ``user_properties``.
"""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.audit_models import make_zoo

pytest_plugins = ["pytester"]


def audit(pytester: pytest.Pytester, name: str, body: str) -> Path:
    return pytester.makefile(".audit.yaml", **{name: body})


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run the engine and the report once in this process first. In-process pytester runs
    drop the modules they imported when they end, and C extensions (numpy.fft, scipy) cannot
    be imported twice; importing them here keeps them out of the inner runs' snapshot."""
    from modelprint.engine import Engine, Target, build_run, write_html

    models = make_zoo(tmp_path_factory.mktemp("warm"))
    pair = Engine().pair(Target(str(models["tuned"])), Target(str(models["base"])))
    run_doc = build_run([pair.to_json()], alpha=pair.alpha, command=["warm-up"])
    with contextlib.suppress(RuntimeError):  # no report module: the plugin says so
        write_html(run_doc, tmp_path_factory.mktemp("warm-html") / "r.html")


@pytest.fixture
def zoo(pytester: pytest.Pytester) -> dict[str, Path]:
    return make_zoo(pytester.path / "models")


def run(pytester: pytest.Pytester, *args: str, subprocess: bool = False
        ) -> tuple[pytest.RunResult, dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Run pytest; return the result, per-item outcomes/properties, and the result JSON."""
    xml = pytester.path / "junit.xml"
    report = pytester.path / "out" / "audit.json"
    for f in (xml, report):
        f.unlink(missing_ok=True)
    argv = [f"--junitxml={xml}", f"--modelprint-json={report}",
            f"--modelprint-html={pytester.path / 'out' / 'audit.html'}", "-p", "no:randomly",
            *args]
    result = pytester.runpytest_subprocess(*argv) if subprocess else pytester.runpytest(*argv)
    items = parse_junit(xml) if xml.exists() else {}
    data = json.loads(report.read_text()) if report.exists() else None
    return result, items, data


def parse_junit(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        status = "passed"
        message = ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (el.get("message") or "") + (el.text or "")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[key] = {"status": status, "message": message, "props": props}
    return out


def statuses(items: dict[str, dict[str, Any]], prefix: str) -> dict[str, str]:
    """``{check: status}`` for the items of one reference (junit classname prefix)."""
    return {k.split("::")[-1]: v["status"] for k, v in items.items()
            if k.startswith(prefix + "::")}


def test_independent_pair_passes_and_inapplicable_checks_skip(
        pytester: pytest.Pytester, zoo: dict[str, Path]) -> None:
    audit(pytester, "gate", "candidate: models/other.fp.json\n"
                            "references:\n  - model: models/base.fp.json\n    name: base\n")
    result, items, data = run(pytester)
    assert result.ret == 0, result.stdout.str()
    got = statuses(items, "gate.audit.yaml.base")
    assert got["identity"] == got["weights_cosine"] == got["verdict"] == "passed"
    assert got["qkv_bias"] == "skipped"
    assert "bias" in items["gate.audit.yaml.base::qkv_bias"]["message"]
    assert items["gate.audit.yaml.base::verdict"]["props"]["verdict"] == "independent"
    assert data is not None and data["pairs"][0]["outcome"] == "passed"


def test_derived_candidate_fails_an_independence_audit_with_an_evidence_table(
        pytester: pytest.Pytester, zoo: dict[str, Path]) -> None:
    audit(pytester, "gate", "candidate: models/tuned.fp.json\n"
                            "references:\n  - model: models/base.fp.json\n    name: base\n")
    result, items, data = run(pytester)
    assert result.ret == 1
    got = statuses(items, "gate.audit.yaml.base")
    assert got["weights_cosine"] == got["identity"] == got["verdict"] == "failed"
    out = result.stdout.str()
    assert "expected independent, verdict is derived" in out
    assert "check" in out and "threshold" in out and "indicates" in out  # the table header
    props = items["gate.audit.yaml.base::weights_cosine"]["props"]
    assert float(props["score"]) > 0.99 and float(props["p_value"]) < 1e-6
    assert props["indicates_derivation"] == "True"
    assert items["gate.audit.yaml.base::verdict"]["props"]["verdict"] == "derived"
    assert data is not None and data["pairs"][0]["outcome"] == "failed"


def test_expect_derived(pytester: pytest.Pytester, zoo: dict[str, Path]) -> None:
    audit(pytester, "lineage", """
candidate: models/tuned.fp.json
references:
  - {model: models/base.fp.json, name: base}
  - {model: models/other.fp.json, name: stranger}
expect: derived
""")
    result, items, data = run(pytester)
    assert result.ret == 1
    assert statuses(items, "lineage.audit.yaml.base")["verdict"] == "passed"
    assert statuses(items, "lineage.audit.yaml.base")["weights_cosine"] == "passed"
    stranger = items["lineage.audit.yaml.stranger::verdict"]
    assert stranger["status"] == "failed"
    assert "expected derived" in stranger["message"]
    # checks that find nothing do not fail a derived expectation; only the verdict does
    assert statuses(items, "lineage.audit.yaml.stranger")["weights_cosine"] == "passed"
    assert data is not None
    assert [(p["reference"]["name"], p["verdict"], p["outcome"]) for p in data["pairs"]] == [
        ("base", "derived", "passed"), ("stranger", "independent", "failed")]


def test_result_json_has_every_pair_and_check(pytester: pytest.Pytester,
                                              zoo: dict[str, Path]) -> None:
    audit(pytester, "a", "candidate: models/other.fp.json\nreferences: [models/base.fp.json]\n"
                         "alpha: 1e-4\n")
    audit(pytester, "b", "candidate: models/tuned.fp.json\nreferences: [models/base.fp.json]\n"
                         "expect: derived\nchecks: {weights_cosine: {}, attention_std: {}}\n")
    result, _, data = run(pytester)
    assert result.ret == 0
    assert data is not None and data["format"] == "modelprint.result/1"
    assert [p["audit"] for p in data["pairs"]] == ["a.audit.yaml", "b.audit.yaml"]
    first, second = data["pairs"]
    assert first["alpha"] == pytest.approx(1e-4)
    assert first["candidate"]["reference"] == "models/other.fp.json"
    assert first["candidate"]["kind"] == "fingerprint"
    assert first["reference"]["name"] == "base"
    assert first["candidate"]["architecture"]["num_layers"] == 8
    assert set(second["checks"]) == {"weights_cosine", "attention_std"}
    for pair in data["pairs"]:
        assert pair["verdict"] in ("derived", "independent", "inconclusive")
        assert pair["verdict_reason"]
        for check in pair["checks"].values():
            assert {"score", "threshold", "p_value", "indicates_derivation", "details",
                    "outcome", "description", "strength"} <= set(check)
    out = result.stdout.str()
    assert "JSON report:" in out and str(pytester.path / "out" / "audit.json") in out


def test_no_report_files_without_audits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x():\n    assert True\n")
    result = pytester.runpytest()
    assert result.ret == 0
    assert not (pytester.path / "reports").exists()
    assert "JSON report" not in result.stdout.str()


def test_reports_default_to_reports_folder_and_ini_options(pytester: pytest.Pytester,
                                                           zoo: dict[str, Path]) -> None:
    audit(pytester, "a", "candidate: models/other.fp.json\nreferences: [models/base.fp.json]\n")
    assert pytester.runpytest().ret == 0
    assert json.loads((pytester.path / "reports" / "audit.json").read_text())["pairs"]
    pytester.makeini("[pytest]\nmodelprint_json = elsewhere/run.json\nmodelprint_alpha = 1e-3\n")
    assert pytester.runpytest().ret == 0
    data = json.loads((pytester.path / "elsewhere" / "run.json").read_text())
    assert data["alpha"] == pytest.approx(1e-3)


BAD = [
    ("candidate: models/other.fp.json\nreferences: [models/base.fp.json]\nexpekt: derived\n",
     3, "unknown key 'expekt'"),
    ("candidate: models/other.fp.json\nreferences: [models/base.fp.json]\nexpect: [derived]\n",
     3, "'expect' must be one of"),
    ("candidate: models/other.fp.json\nreferences: [models/base.fp.json]\n"
     "candidate: models/base.fp.json\n", 3, "duplicate key 'candidate'"),
    ("candidate: models/other.fp.json\nreferences:\n  - model: models/gone.fp.json\n", 3,
     "not found"),
    ("candidate: models/other.fp.json\nreferences: [models/base.fp.json\n", 2,
     "not valid YAML"),
    ("candidate: models/other.fp.json\nreferences: [models/base.fp.json]\n"
     "checks:\n  weights_cosine:\n    alpah: 0.1\n", 5, "unknown option 'alpah'"),
]


@pytest.mark.parametrize(("body", "line", "cause"), BAD)
def test_bad_audit_file_is_a_collection_error_with_file_line(
        pytester: pytest.Pytester, zoo: dict[str, Path], body: str, line: int, cause: str
) -> None:
    audit(pytester, "bad", body)
    audit(pytester, "good", "candidate: models/other.fp.json\n"
                            "references: [models/base.fp.json]\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2
    out = result.stdout.str()
    assert f"bad.audit.yaml:{line}: " in out
    assert cause in out
    assert "Traceback" not in out


def test_unreadable_model_fails_with_one_line_and_exit_2(pytester: pytest.Pytester,
                                                         zoo: dict[str, Path]) -> None:
    (pytester.path / "models" / "broken.fp.json").write_text('{"format": "nope"}')
    audit(pytester, "a", "candidate: models/broken.fp.json\nreferences: [models/base.fp.json]\n")
    result, _, data = run(pytester)
    assert result.ret == 2
    out = result.stdout.str()
    assert "broken.fp.json: format 'nope'" in out
    assert "Traceback" not in out
    assert data is not None and data["pairs"][0]["outcome"] == "failed"


def test_keyword_selection_and_exitfirst(pytester: pytest.Pytester,
                                         zoo: dict[str, Path]) -> None:
    audit(pytester, "a", "candidate: models/tuned.fp.json\nreferences:\n"
                         "  - {model: models/base.fp.json, name: base}\n"
                         "  - {model: models/other.fp.json, name: other}\n")
    result, items, data = run(pytester, "-k", "weights_cosine")
    assert set(items) == {"a.audit.yaml.base::weights_cosine", "a.audit.yaml.other::weights_cosine"}
    assert result.ret == 1
    assert data is not None and len(data["pairs"]) == 2
    partial = data["pairs"][0]
    assert set(partial["checks"]) == {"weights_cosine"}
    assert partial["verdict"] == "derived" and "partial run" in partial["verdict_reason"]

    result, items, data = run(pytester, "-x")
    assert result.ret == 1
    assert [v["status"] for v in items.values()].count("failed") == 1
    assert data is not None and data["pairs"]  # a stopped run still reports what it has


def test_last_failed_reruns_only_failures(pytester: pytest.Pytester, zoo: dict[str, Path]) -> None:
    audit(pytester, "a", "candidate: models/tuned.fp.json\nreferences:\n"
                         "  - {model: models/base.fp.json, name: base}\n"
                         "  - {model: models/other.fp.json, name: other}\n")
    first, items, _ = run(pytester)
    failed = {k for k, v in items.items() if v["status"] == "failed"}
    assert first.ret == 1 and failed
    second, items, _ = run(pytester, "--lf")
    assert second.ret == 1
    assert set(items) == failed


def test_json_safe_makes_plain_python_types() -> None:
    import numpy as np

    from modelprint.engine import json_safe

    out = json_safe({"a": np.float64(0.5), "b": [np.int64(3), np.bool_(True)],
                     "c": np.arange(2.0), "d": float("nan"), "e": (1, np.float32(2.0))})
    assert out == {"a": 0.5, "b": [3, True], "c": [0.0, 1.0], "d": None, "e": [1, 2.0]}
    assert type(out["a"]) is float and type(out["b"][0]) is int and type(out["b"][1]) is bool


def test_real_run_writes_a_valid_escaped_self_contained_html_report(
        pytester: pytest.Pytester, zoo: dict[str, Path]) -> None:
    """The report of an actual ``pytest`` run (not a hand-made result): every pair and check,
    strict HTML5, no external resource, and a hostile reference name and a planted license
    excerpt shown as text."""
    from tests.synth import make_model
    from tests.test_report import elements, has_class, parse, text_of

    made = make_model(pytester.path / "models", "qwen2", seed=5).path
    evil = "<script>alert(1)<\\script>"  # a directory name cannot hold '/'
    cand = made.rename(made.parent / evil)
    (cand / "NOTICE").write_text("Copyright 2024 Alibaba Cloud. <img src=x onerror=alert(2)>\n"
                                 "Licensed under the Tongyi Qianwen LICENSE AGREEMENT\n")
    audit(pytester, "a", f"candidate: 'models/{evil}'\nreferences:\n"
                         "  - model: models/base.fp.json\n    name: base\n"
                         "  - model: models/other.fp.json\n    name: other\n"
                         "checks: {license: {claimed_vendor: acme}, weights_cosine: {}, "
                         "attention_std: {}}\n")
    result, _, data = run(pytester)
    assert result.ret in (0, 1)
    page = pytester.path / "out" / "audit.html"
    assert f"HTML report: {page}" in result.stdout.str()
    html = page.read_text(encoding="utf-8")
    dom = parse(html)                        # strict html5lib: raises on a parse error
    assert not elements(dom, "script")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    for e in dom.iter():
        assert not any(str(a).lower().startswith("on") for a in e.attrib), e.attrib
    body = text_of(dom)
    assert data is not None and len(data["pairs"]) == 2
    for pair in data["pairs"]:
        assert pair["reference"]["name"] in body
        for check in pair["checks"]:
            assert check in body
    assert "&lt;script&gt;alert(1)&lt;" in html and evil in body
    excerpts = " ".join(text_of(p) for p in elements(dom, "pre") if has_class(p, "excerpt"))
    assert "<img src=x onerror=alert(2)>" in excerpts


def test_each_model_loads_once_per_session_into_the_given_cache_dir(
        pytester: pytest.Pytester, zoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two references x every check = 22 items, but three models: three loads. The fingerprint
    of the weights goes to --modelprint-cache-dir, and a second session reuses it."""
    import modelprint.models as models
    from tests.synth import make_model

    calls: list[str] = []
    real = models.load_model

    def counting(reference: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(reference)
        return real(reference, *args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    cand = make_model(pytester.path / "models", "llama", seed=7).path
    audit(pytester, "a", f"candidate: models/{cand.name}\n"
                         "references: [models/base.fp.json, models/other.fp.json]\n")
    cache = pytester.path / "fp-cache"
    result, items, _ = run(pytester, f"--modelprint-cache-dir={cache}")
    from modelprint.checks import check_names

    assert result.ret == 0 and len(items) == 2 * (len(check_names()) + 1)  # checks + verdict
    assert sorted(calls) == sorted([f"models/{cand.name}", "models/base.fp.json",
                                    "models/other.fp.json"])
    entries = list(cache.rglob("*.fp.cache"))
    assert len(entries) == 1            # the safetensors candidate; fp.json files need none
    stamp = entries[0].stat().st_mtime_ns
    result, _, _ = run(pytester, f"--modelprint-cache-dir={cache}")
    assert result.ret == 0 and entries[0].stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_offline_option_never_asks_the_hub(pytester: pytest.Pytester, zoo: dict[str, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(pytester.path / "empty-hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    audit(pytester, "a", "candidate: models/other.fp.json\n"
                         "references: ['hf:some-org/absent-model']\n")
    result, _, _ = run(pytester, "--modelprint-offline")
    out = result.stdout.str()
    assert result.ret in (1, 2)
    assert "offline" in out and "some-org/absent-model" in out


def test_the_checks_a_session_runs_are_computed_side_by_side_once(
        pytester: pytest.Pytester, zoo: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first check item of a reference hands the engine the checks this session will ask
    for: every check when the verdict item runs, only the selected ones under ``-k``."""
    from modelprint.checks import check_names
    from modelprint.engine import Engine

    asked: list[list[str]] = []
    real = Engine.evidence_many

    def spy(self: Engine, candidate: Any, reference: Any, checks: Any) -> Any:
        asked.append(list(checks))
        return real(self, candidate, reference, checks)

    monkeypatch.setattr(Engine, "evidence_many", spy)
    audit(pytester, "a", "candidate: models/other.fp.json\nreferences: [models/base.fp.json]\n")
    result, items, _ = run(pytester)
    assert result.ret == 0
    assert asked and sorted(asked[0]) == sorted(check_names())
    asked.clear()
    result, items, _ = run(pytester, "-k", "identity or weights_cosine")
    assert result.ret == 0 and len(items) == 2
    assert [sorted(a) for a in asked] == [["identity", "weights_cosine"]]
