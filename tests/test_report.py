"""The HTML report: complete, valid, self-contained, escaped, robust to partial runs."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import html5lib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprint.report import render, render_report, write_report
from tests.report_fixtures import XSS_EXCERPT, XSS_NAME, XSS_TENSOR, make_pair, make_run


def parse(html: str) -> Any:
    """Strict HTML5 parse (raises on any parse error) into an ElementTree."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    return parser.parse(html)


def local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def elements(root: Any, name: str) -> list[Any]:
    return [e for e in root.iter() if local(e.tag) == name]


def has_class(e: Any, cls: str) -> bool:
    return cls in (e.get("class") or "").split()


def text_of(e: Any) -> str:
    return "".join(e.itertext()).replace("\xa0", " ")


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return make_run(3)


@pytest.fixture(scope="module")
def html(run: dict[str, Any]) -> str:
    return render_report(run)


@pytest.fixture(scope="module")
def dom(html: str) -> Any:
    return parse(html)


def summary_rows(dom: Any) -> list[Any]:
    table = next(t for t in elements(dom, "table") if has_class(t, "summary"))
    return [r for r in elements(table, "tr") if elements(r, "td")]


def test_report_is_valid_html5(html: str) -> None:
    parse(html)  # strict mode raises on the first parse error
    assert html.startswith("<!DOCTYPE html>")


def test_strict_parser_does_reject_broken_html() -> None:
    with pytest.raises(html5lib.html5parser.ParseError):
        parse("<!DOCTYPE html><html><body><p><div></span></body></html>")


def test_every_pair_and_check_is_in_summary_and_evidence(run: dict[str, Any], dom: Any) -> None:
    rows = summary_rows(dom)
    assert len(rows) == len(run["pairs"])
    head = [text_of(th) for th in elements(dom, "thead")[0].iter() if local(th.tag) == "th"]
    pairs = [e for e in elements(dom, "article") if has_class(e, "pair")]
    assert len(pairs) == len(run["pairs"])
    shown = {text_of(elements(a, "h3")[0]) for a in pairs}
    for pair in run["pairs"]:
        assert title(pair) in shown
        for name in pair["checks"]:
            assert name in head
    for article in pairs:
        checks = [s for s in elements(article, "section") if has_class(s, "check")]
        names = [text_of(elements(s, "h4")[0]).split()[0] for s in checks]
        assert names == list(run["pairs"][0]["checks"])


def test_failed_audits_come_first(run: dict[str, Any], dom: Any) -> None:
    failed = [p for p in run["pairs"] if p["outcome"] == "failed"]
    assert failed and run["pairs"][0]["outcome"] != "failed"  # the fixture puts it later
    first = summary_rows(dom)[0]
    assert failed[0]["reference"]["name"] in text_of(first)
    assert "audit failed" in text_of(first)


def test_summary_cells_show_score_threshold_p_and_outcome(run: dict[str, Any],
                                                          dom: Any) -> None:
    row = summary_rows(dom)[0]
    pair = next(p for p in run["pairs"] if p["outcome"] == "failed")
    cells = [c for c in elements(row, "td") if has_class(c, "cell")]
    att = cells[list(pair["checks"]).index("attention_std")]
    ev = pair["checks"]["attention_std"]
    assert f"score {ev['score']:.3g}" in text_of(att)
    assert f"thr {ev['threshold']:.3g}" in text_of(att)
    assert f"p {ev['p_value']:.3g}" in text_of(att)
    wc = cells[list(pair["checks"]).index("weights_cosine")]
    assert text_of(wc).strip().startswith("fail")
    assert pair["verdict"] in text_of(row) and pair["verdict_reason"] in text_of(row)


def test_not_applicable_check_is_marked_na(run: dict[str, Any], dom: Any) -> None:
    row = next(r for r in summary_rows(dom) if XSS_NAME in text_of(r))
    cells = [c for c in elements(row, "td") if has_class(c, "cell")]
    qkv = cells[list(run["pairs"][2]["checks"]).index("qkv_bias")]
    assert text_of(qkv).strip().startswith("n.a.")


def test_no_external_resources(html: str, dom: Any) -> None:
    for e in dom.iter():
        tag = local(e.tag)
        assert tag not in {"script", "link", "img", "iframe", "object", "embed", "image",
                           "use", "base", "audio", "video", "source", "form"}, tag
        for attr, value in e.attrib.items():
            name = local(attr).lower()
            assert name not in {"src", "srcset", "action", "poster", "background"}
            if name == "href":
                assert value.startswith("#"), value   # only links within the report
            assert not re.search(r"url\s*\(", value, re.I)
    css = "".join(text_of(s) for s in elements(dom, "style"))
    assert not re.search(r"url\s*\(|@import|@font-face", css, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)


def test_hostile_strings_are_escaped_not_executed(html: str, dom: Any) -> None:
    assert not elements(dom, "script")
    for e in dom.iter():
        assert not any(local(a).lower().startswith("on") for a in e.attrib), e.attrib
    body = text_of(dom)
    assert XSS_NAME in body          # shown as text, so a reader sees it
    assert XSS_TENSOR in body
    excerpts = [text_of(p) for p in elements(dom, "pre") if has_class(p, "excerpt")]
    assert XSS_EXCERPT in excerpts
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_control_characters_and_lone_surrogates_cannot_break_the_file(
        tmp_path: Path) -> None:
    run = make_run(1)
    run["pairs"][0]["reference"]["name"] = "bad\x00name\x1b[31m\ud800"
    run["pairs"][0]["checks"]["license"]["details"]["findings"][0]["excerpt"] = "x\x0cy"
    out = write_report(run, tmp_path / "r.html")
    parse(out.read_text(encoding="utf-8"))
    assert "bad\ufffdname\ufffd[31m\ufffd" in out.read_text(encoding="utf-8")


def test_seed_check_section_shows_curves_null_and_statistics(run: dict[str, Any],
                                                             dom: Any) -> None:
    pair = run["pairs"][0]
    ev = pair["checks"]["attention_std"]
    section = section_of(dom, pair, "attention_std")
    charts = [s for s in elements(section, "svg") if has_class(s, "line-chart")]
    assert len(charts) == 4                              # Q, K, V, O
    for svg_el, role in zip(charts, ("Q", "K", "V", "O"), strict=True):
        assert elements(svg_el, "title")[0].text.startswith(f"{role}   r = ")
        assert len(elements(svg_el, "polyline")) == 2     # candidate and reference
    strip = [s for s in elements(section, "svg") if has_class(s, "null-strip")]
    assert len(strip) == 1
    scores = ev["details"]["null"]["scores"]
    above = sum(1 for s in scores if s >= ev["score"])
    assert f"{above} of {len(scores)} independent pairs score at least as high" in \
        " ".join(text_of(section).split())
    text = text_of(section)
    assert "n_eff" in text and "detrended r" in text
    per_role = ev["details"]["per_role"]["attn.k"]
    assert f"{per_role['r_detrended']:.3g}" in text


def test_vector_checks_show_heat_strip_per_layer_and_magnitudes(run: dict[str, Any],
                                                               dom: Any) -> None:
    pair = run["pairs"][0]
    for check, roles in (("qkv_bias", 3), ("layernorm", 2)):
        section = section_of(dom, pair, check)
        strips = [s for s in elements(section, "svg") if has_class(s, "heat-strip")]
        assert len(strips) == roles
        layers = len(pair["checks"][check]["details"]["curves"]["attn.q_bias"
                                                              if check == "qkv_bias"
                                                              else "norm.attn"]["a"])
        for s in strips:
            cells = [r for r in elements(s, "rect") if "cell" in (r.get("class") or "")]
            assert len(cells) == layers
        assert "magnitude ratio" in text_of(section)
        assert "RMS" in text_of(section)


def test_license_section_lists_every_finding(run: dict[str, Any], dom: Any) -> None:
    for pair in run["pairs"]:
        section = section_of(dom, pair, "license")
        findings = pair["checks"]["license"]["details"]["findings"]
        rows = [r for r in elements(section, "tr") if elements(r, "pre")]
        assert len(rows) == len(findings)
        for row, f in zip(rows, findings, strict=True):
            text = text_of(row)
            assert f"{f['file']}:{f['line']}" in text
            assert f.get("vendor_name", f["vendor"]) in text
            assert text_of(elements(row, "pre")[0]) == f["excerpt"]
            assert has_class(row, "links") == bool(f.get("links_reference"))
        lic = pair["checks"]["license"]["details"]
        assert lic["claimed_vendor_name"] in text_of(section)


def test_check_without_fragment_gets_generic_table() -> None:
    pair = make_pair(0, related=False, expect="independent", name="ref")
    ev = pair["checks"]["weights_cosine"]           # its details, under a name without fragment
    pair["checks"] = {"future_check": {**ev, "check": "future_check"}}
    dom = parse(render_report({"pairs": [pair]}))
    details = ev["details"]
    section = section_of(dom, pair, "future_check")
    text = text_of(section)
    assert "tensors_compared" in text and "96" in text                 # scalar
    assert [s for s in elements(section, "svg") if has_class(s, "spark")]  # numeric list
    assert "candidate: 211" in text and "reference: 127" in text       # flat mapping
    records = [t for t in elements(section, "table") if has_class(t, "records")]
    assert len(records) == 1                                           # list of records
    body_rows = [r for r in elements(records[0], "tr") if elements(r, "td")]
    assert len(body_rows) == len(details["per_matrix"])
    assert "matrix" in text                                  # deeper values are named


def test_cka_section_draws_per_layer_curve_and_null(run: dict[str, Any], dom: Any) -> None:
    pair = run["pairs"][0]
    details = pair["checks"]["attention_cka"]["details"]
    section = section_of(dom, pair, "attention_cka")
    line = [s for s in elements(section, "svg") if has_class(s, "line-chart")]
    assert len(line) == 1
    assert len(elements(line[0], "circle")) == len(details["per_layer"])
    strip = [s for s in elements(section, "svg") if has_class(s, "null-strip")]
    assert len(strip) == 1
    words = " ".join(text_of(section).split())
    assert f"bars: {len(details['null']['scores'])} independent pairs" in words
    assert "Student-t prediction p" in words and "Empirical p against the panel" in words
    assert "shared_tokens" in text_of(section)         # the rest via the generic table


def test_descriptions_and_provenance(run: dict[str, Any], dom: Any) -> None:
    methods = next(s for s in elements(dom, "section") if s.get("id") == "methods")
    for ev in run["pairs"][0]["checks"].values():
        assert ev["description"] in text_of(methods)
    prov = text_of(next(s for s in elements(dom, "section") if s.get("id") == "provenance"))
    assert "pytest audits/ --modelprint-html reports/audit.html" in prov
    assert run["modelprint_version"] in prov and run["created"] in prov
    for pair in run["pairs"]:
        for side in ("candidate", "reference"):
            assert pair[side]["reference"] in prov
            assert pair[side]["revision"] in prov
            for name, sha in pair[side]["files"].items():
                assert name in prov and sha in prov
        assert str(pair["candidate"]["architecture"]["hidden_size"]) in prov


def title(pair: dict[str, Any]) -> str:
    """Heading of a pair's evidence: display names (a path reference shows its last part)."""
    return f"{Path(pair['candidate']['reference']).name} → {pair['reference']['name']}"


def section_of(dom: Any, pair: dict[str, Any], check: str) -> Any:
    article = next(a for a in elements(dom, "article")
                   if text_of(elements(a, "h3")[0]) == title(pair))
    return next(s for s in elements(article, "section")
                if has_class(s, "check") and text_of(elements(s, "h4")[0]).split()[0] == check)


# -- partial and odd input --------------------------------------------------------------------


@pytest.mark.parametrize("run", [
    {}, {"pairs": None}, {"pairs": [None, 3, "x"]}, {"pairs": [{}]},
    {"pairs": [{"checks": {"attention_std": None, "license": {"details": None}}}]},
])
def test_partial_runs_still_render(run: Any) -> None:
    html = render_report(run)
    parse(html)
    assert "modelprint audit report" in html


def test_empty_run_says_so() -> None:
    assert "has no results" in render_report({"pairs": []})


ODD_DETAILS = [
    {},
    {"curves": {"attn.q": {"a": [1, 2, 3]}}},                          # no b, no per_role
    {"curves": [1, 2], "null": "x", "per_role": {"attn.q": 3}, "vectors": {"x": 5}},
    {"curves": {"attn.q": {"a": "abc", "b": None}}, "null": {"scores": [None, "a", 1e400]},
     "vectors": {"norm.attn": {"per_layer": [1, None, {"centred_r": "a", "layers": 7}]}}},
    {"findings": [None, 3, {"file": 5, "line": None}, {"excerpt": ["a"]}]},
    {"findings": "not a list", "files": 3, "rule": 5, "flat": [1], "absent": "x"},
]


@pytest.mark.parametrize("details", ODD_DETAILS)
@pytest.mark.parametrize("check", ["attention_std", "qkv_bias", "layernorm", "license",
                                   "attention_cka"])
def test_fragments_render_partial_details_without_falling_back(check: str,
                                                               details: dict[str, Any]) -> None:
    pair = make_pair(0, related=False, expect="independent", name="ref")
    pair["checks"] = {check: {**pair["checks"][check], "details": details}}
    html = render_report({"pairs": [pair]})
    parse(html)
    assert "could not be drawn" not in html


def test_a_failing_fragment_falls_back_to_the_generic_table(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from jinja2 import ChoiceLoader, DictLoader

    env = render.environment()
    broken = env.overlay(loader=ChoiceLoader([
        DictLoader({"checks/boom.html.j2": "{{ as_list(d.values)[99].x }}{{ 1 // 0 }}"}),
        env.loader]))
    monkeypatch.setattr(render, "environment", lambda: broken)
    pair = make_pair(0, related=False, expect=None, name="ref")
    pair["checks"] = {"boom": {"check": "boom", "details": {"answer": 42}}}
    html = render.render_report({"pairs": [pair]})
    parse(html)
    assert "could not be drawn (ZeroDivisionError" in html
    assert "answer" in html and "42" in html


@pytest.mark.parametrize("name", ["../report", "checks/x", "a b", "", "x" * 200, "_default"])
def test_odd_check_names_use_the_generic_section(name: str) -> None:
    pair = make_pair(0, related=False, expect=None, name="ref")
    pair["checks"] = {name: {"details": {"k": 1}, "summary": "s"}}
    html = render_report({"pairs": [pair]})
    parse(html)
    assert "could not be drawn" not in html


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from(["a", "b", "curves", "null", "scores", "per_role",
                                       "attn.q", "vectors", "per_layer", "findings", "file",
                                       "excerpt", "centred_r", "layers", "rms_a", "r"]),
                      inner, max_size=5),
    max_leaves=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(details=json_values, ev=st.dictionaries(
    st.sampled_from(["score", "threshold", "p_value", "applicable", "outcome", "summary"]),
    json_values, max_size=4))
def test_any_json_details_render_valid_html(details: Any, ev: dict[str, Any]) -> None:
    pair = make_pair(0, related=False, expect=None, name="ref")
    for name in list(pair["checks"]):
        pair["checks"][name] = {**ev, "details": details}
    parse(render_report({"pairs": [pair]}))


# -- writing ---------------------------------------------------------------------------------


def test_write_report_is_atomic_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "audit.html"
    target.parent.mkdir(parents=True)
    target.write_text("old")
    out = write_report(make_run(1), target)
    assert out == target
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in target.parent.iterdir()) == ["audit.html"]  # no temp files
    assert out.stat().st_mode & stat.S_IROTH
    fresh = write_report(make_run(1), tmp_path / "new" / "r.html")   # parents created
    assert fresh.exists()


def test_failed_render_leaves_the_old_report_in_place(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "audit.html"
    target.write_text("previous report")

    def boom(run: Any) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(render, "render_report", boom)
    with pytest.raises(RuntimeError):
        render.write_report(make_run(1), target)
    assert target.read_text() == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.html"]


def test_five_pair_audit_of_deep_models_stays_small(tmp_path: Path) -> None:
    run = make_run(5, layers=64)
    for pair in run["pairs"]:
        for ev in pair["checks"].values():
            null = ev["details"].get("null")
            if null:
                for key in ("scores", "pairs"):                # a 1200-pair null panel
                    if key in null:
                        null[key] = null[key] * 20
    out = write_report(run, tmp_path / "r.html")
    size = out.stat().st_size
    assert size < 2_000_000, size
    assert len(json.dumps(run)) > size / 4    # the report does not balloon beyond its data
