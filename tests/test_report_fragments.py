"""Report sections of the weight-level checks (identity, weights_cosine, embedding_alignment,
mlp_matching, moe_upcycling), drawn from details the checks really compute on small synthetic
models, plus the generic chart primitives they use."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprint.report import plots, render_report, svg
from modelprint.report.view import fmt, fmt_p
from tests.fragment_cases import CASES, evidence, pair_with
from tests.report_fixtures import make_run
from tests.test_report import elements, has_class, local, parse, text_of

FRAGMENTS = ["identity", "weights_cosine", "embedding_alignment", "mlp_matching",
             "moe_upcycling"]
HOSTILE = '<img src=x onerror="alert(9)">'


def section(check: str, case: str) -> tuple[dict[str, Any], Any]:
    """The rendered section of one real evidence (its result JSON and the <section>)."""
    ev = evidence(check, case)
    html = render_report({"pairs": [pair_with({check: ev})]})
    assert "could not be drawn" not in html
    dom = parse(html)
    sec = next(s for s in elements(dom, "section") if has_class(s, "check"))
    return ev, sec


def svgs(sec: Any, cls: str) -> list[Any]:
    return [s for s in elements(sec, "svg") if has_class(s, cls)]


def words(e: Any) -> str:
    return " ".join(text_of(e).split())


def dots(chart: Any) -> list[Any]:
    return [c for c in elements(chart, "circle")]


def kv(sec: Any) -> dict[str, str]:
    """Rows of the section's key/value tables: header cell text -> the rest of the row."""
    out = {}
    for r in elements(sec, "tr"):
        kids = [c for c in r if local(c.tag) in ("th", "td")]
        if len(kids) >= 2 and local(kids[0].tag) == "th":
            out[words(kids[0])] = " | ".join(words(c) for c in kids[1:])
    return out


def cells(chart: Any) -> list[Any]:
    return [r for r in elements(chart, "rect") if "cell" in (r.get("class") or "").split()]


@pytest.mark.parametrize(("check", "case"), CASES)
def test_every_case_renders_its_own_section(check: str, case: str) -> None:
    ev, sec = section(check, case)
    assert ev["applicable"], ev["reason"]
    assert svgs(sec, "chart") or elements(sec, "table")
    assert "Also recorded in the result JSON" not in text_of(sec)   # every key is drawn


# -- identity ---------------------------------------------------------------------------------


def test_identity_lists_byte_identical_tensors_and_marks_the_threshold() -> None:
    ev, sec = section("identity", "exact")
    d = ev["details"]
    rows = [r for t in elements(sec, "table") if has_class(t, "records")
            for r in elements(t, "tr") if elements(r, "td")]
    assert len(rows) == len(d["exact_matches"]) > 0
    for row, m in zip(rows, d["exact_matches"], strict=True):
        assert m["candidate"][0] in text_of(row) and m["digest"][:19] in text_of(row)
    assert kv(sec)["byte-identical tensors"].startswith(f"{d['exact_match_count']} — ")
    (chart,) = svgs(sec, "dot-rows")
    assert len(dots(chart)) == len(d["per_matrix"])
    assert elements(chart, "line") and any(has_class(x, "thr") for x in elements(chart, "line"))
    zeros = sum(1 for r in d["per_matrix"] if r["relative_difference"] == 0)
    assert zeros and f"{zeros} matrices are identical on the sample" in words(sec)


def test_identity_caps_the_list_of_identical_tensors_and_says_so() -> None:
    ev = evidence("identity", "exact")
    d = {**ev["details"], "exact_matches": ev["details"]["exact_matches"] * 15,
         "exact_match_count": 400}
    html = render_report({"pairs": [pair_with({"identity": {**ev, "details": d}})]})
    sec = next(s for s in elements(parse(html), "section") if has_class(s, "check"))
    rows = [r for t in elements(sec, "table") if has_class(t, "records")
            for r in elements(t, "tr") if elements(r, "td")]
    assert len(rows) == 25
    assert "Byte-identical tensors (the first 25 of 400):" in words(sec)


def test_identity_dots_fall_on_the_side_of_the_threshold_their_difference_says() -> None:
    ev, sec = section("identity", "exact")
    (chart,) = svgs(sec, "dot-rows")
    thr_x = float(next(x for x in elements(chart, "line") if has_class(x, "thr")).get("x1"))
    diffs = sorted(r["relative_difference"] for r in ev["details"]["per_matrix"])
    xs = sorted(float(c.get("cx")) for c in dots(chart))
    for diff, x in zip(diffs, xs, strict=True):
        assert (x < thr_x) == (diff < ev["threshold"])
    near = sum(1 for v in diffs if v <= ev["threshold"])
    assert kv(sec)["near-identical matrices"].startswith(f"{near} of {len(diffs)} within")


def test_identity_of_independent_models_says_none() -> None:
    ev, sec = section("identity", "independent")
    assert kv(sec)["byte-identical tensors"] == "none"
    assert kv(sec)["near-identical matrices"].startswith(
        f"0 of {len(ev['details']['per_matrix'])} ")


# -- weights_cosine ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["tuned", "independent"])
def test_weights_cosine_strip_has_the_bonferroni_line_and_counts_matrices_beyond_it(
        case: str) -> None:
    ev, sec = section("weights_cosine", case)
    d = ev["details"]
    zline = plots.upper_z(ev["threshold"] / d["matrices"])
    assert zline is not None
    (strip,) = svgs(sec, "dot-rows")
    assert len(dots(strip)) == len(d["per_matrix"])
    beyond = sum(1 for r in d["per_matrix"] if r["z"] >= zline)
    assert beyond == (len(d["per_matrix"]) if case == "tuned" else 0)
    assert f"{beyond} of {len(d['per_matrix'])} are" in words(sec)
    assert f"z = {fmt(zline, 2)}" in words(strip)
    (grid,) = svgs(sec, "heat-grid")
    layers = {r["layer_a"] for r in d["per_matrix"]}
    assert len(cells(grid)) == len(d["by_role"]) * len(layers)
    rows = {text_of(r.find("td")): r for r in elements(sec, "tr") if elements(r, "td")}
    for role, cos in d["by_role"].items():
        assert fmt(cos, 4) in text_of(rows[role])


def test_weights_cosine_grid_makes_derived_cells_dark_and_independent_ones_pale() -> None:
    for case, check in (("tuned", lambda op: op > 0.5), ("independent", lambda op: op < 0.2)):
        _, sec = section("weights_cosine", case)
        (grid,) = svgs(sec, "heat-grid")
        assert all(check(float(c.get("fill-opacity"))) for c in cells(grid)), case


# -- embedding_alignment ----------------------------------------------------------------------


@pytest.mark.parametrize(("case", "phrase"), [
    ("derived", "Same residual basis"),
    ("permuted", "Near-perfect matches in another order"),
    ("independent", "unrelated order, as for independently trained models"),
])
def test_embedding_alignment_explains_what_the_numbers_mean(case: str, phrase: str) -> None:
    ev, sec = section("embedding_alignment", case)
    d = ev["details"]
    text = words(sec)
    assert phrase in text
    n = d["dimensions_matched"]
    table = kv(sec)
    assert table["matched to the same index"].startswith(
        f"{round(d['identity_fraction'] * n)} of {n} ")
    assert table["sign flipped"].startswith(f"{d['sign_flips']} of {n} ")
    assert table["shared tokens"].startswith(f"{d['shared_tokens']} ")
    (strip,) = svgs(sec, "dot-rows")
    (dot,) = dots(strip)
    assert fmt(d["spearman_rho"]) in text_of(elements(dot, "title")[0])
    assert f"± {fmt(1 / math.sqrt(n - 1), 2)}" in text


# -- mlp_matching -----------------------------------------------------------------------------


def test_an_early_stop_is_explained_where_the_layers_are_drawn() -> None:
    ev, sec = section("mlp_matching", "stopped")
    lc = ev["details"]["layers_compared"]
    assert lc["early_stop"] is True and len(ev["details"]["per_layer"]) == lc["compared"]
    assert f"Stopped after {lc['compared']} of {lc['of']} layer pairs" in text_of(sec)
    _, whole = section("mlp_matching", "derived")
    assert f"All {lc['of']} layer pairs compared" in text_of(whole)


@pytest.mark.parametrize("case", ["derived", "experts", "independent"])
def test_mlp_matching_draws_every_layer_with_the_alpha_line(case: str) -> None:
    ev, sec = section("mlp_matching", case)
    d = ev["details"]
    n = len(d["per_layer"])
    rho, strength = svgs(sec, "line-chart")
    for chart in (rho, strength):
        groups = [g for g in elements(chart, "g") if has_class(g, "series")]
        assert [len(dots(g)) for g in groups] == [n, n]
    thr = [x for x in elements(strength, "line") if has_class(x, "thr")]
    assert len(thr) == 1 and "one layer alone" in text_of(strength)
    alone = sum(1 for r in d["per_layer"]
                if min(r["log10_p"], r["consistency_log10_p"]) <= math.log10(ev["threshold"]))
    assert alone == (0 if case == "independent" else n)
    assert f"{alone} of {n} tested layer pairs are beyond" in words(sec)
    first = d["per_layer"][0]
    tip = text_of(elements(dots(strength)[0], "title")[0])
    assert tip.startswith(f"layer {first['layer_a']} ↔ {first['layer_b']}")
    rows = [r for t in elements(sec, "table") if has_class(t, "records")
            for r in elements(t, "tr") if elements(r, "td")]
    assert len(rows) == n
    assert d["layer_pairing"] in text_of(sec)
    head = [words(th) for t in elements(sec, "table") if has_class(t, "records")
            for th in elements(t, "th")]
    assert ("expert" in head) == (case == "experts")
    if case == "experts":
        shown = [words([c for c in r if local(c.tag) == "td"][1]) for r in rows]
        assert shown == [str(r["expert"]) for r in d["per_layer"]]
    if case != "independent":   # the p-values underflow: the exponent is shown, not "0"
        exp = round(d["order_test"]["log10_p"])
        assert f"10{str(exp).replace('-', '−')}" in text_of(sec)
    else:
        assert fmt_p(d["order_test"]["p_value"]) in text_of(sec)


# -- moe_upcycling ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["copies", "slices", "independent"])
def test_moe_grid_shows_which_experts_matched(case: str) -> None:
    ev, sec = section("moe_upcycling", case)
    recs = ev["details"]["per_expert"]
    (grid,) = svgs(sec, "heat-grid")
    cs = cells(grid)
    assert len(cs) == len({(r["layer_a"], r["expert"]) for r in recs})
    full = [c for c in cs if float(c.get("fill-opacity")) == 1.0]
    matched = [r for r in recs if r["matched"]]
    assert len(full) == len(matched) == (0 if case == "independent" else len(recs))
    assert f"{len(matched)} of {len(recs)} tested experts match" in words(sec)
    rows = [r for t in elements(sec, "table") if has_class(t, "records")
            for r in elements(t, "tr") if elements(r, "td")]
    assert len(rows) == len(recs)
    for row, r in zip(rows, recs, strict=True):
        if r["matched"]:
            assert r["dense_slice"] in text_of(row)
            assert ("units shuffled" in text_of(row)) == (r.get("in_order") is False)
        else:
            assert "no match beyond chance" in text_of(row)


# -- robustness -------------------------------------------------------------------------------


ODD = [
    {},
    {"per_matrix": None, "exact_matches": "x", "by_role": [1], "per_layer": {"a": 1},
     "per_expert": 5, "similarity_matrix": "no"},
    {"per_matrix": [None, 3, {"role": None, "z": "a", "relative_difference": -1},
                    {"role": HOSTILE, "layer_a": HOSTILE, "z": 1e400, "cosine": None}],
     "exact_matches": [None, {"candidate": "abc", "reference": [None, 3], "digest": 5}],
     "exact_match_count": "many", "hashed_tensors": {"candidate": None}, "matrices": 0,
     "by_role": {HOSTILE: "x", "attn.q": 0.5}},
    {"per_layer": [None, {"layer_a": HOSTILE, "rho": "x", "log10_p": -1e400},
                   {"log10_p": None, "consistency_log10_p": 5, "expert": HOSTILE}],
     "order_test": {"log10_p": "x"}, "consistency_test": 3, "log10_p": None,
     "similarity_matrix": [[1, None, "a"], [], None, [2e400]], "layer_pairing": HOSTILE},
    {"per_expert": [{"layer_a": None, "expert": None, "matched": "yes", "log10_p": -5000},
                    {"layer_a": [1], "expert": {"x": 1}, "dense_slice": HOSTILE,
                     "in_order": False, "matched": True}, None],
     "experts_skipped": -3, "independent_groups": "x"},
    {"log10_p": 309, "order_test": {"log10_p": 1e300}, "consistency_test": {"log10_p": -1e300},
     "per_layer": [{"log10_p": 400, "consistency_log10_p": -400, "rho": 1}],
     "per_expert": [{"log10_p": 400, "consistency_log10_p": 1e308, "layer_a": 0, "expert": 0}]},
    {"spearman_rho": "high", "dimensions_matched": 1, "identity_fraction": 2.0,
     "sign_flips": None, "matching_strength": 1e400, "shared_tokens": HOSTILE,
     "candidate_is_wider": "maybe"},
]


@pytest.mark.parametrize("details", ODD)
@pytest.mark.parametrize("check", FRAGMENTS)
@pytest.mark.parametrize("threshold", [1e-6, None, 0.0, "x"])
def test_fragments_render_partial_details_without_falling_back(
        check: str, details: dict[str, Any], threshold: Any) -> None:
    ev = {"check": check, "strength": "decisive", "applicable": True, "score": 0.5,
          "threshold": threshold, "p_value": 0.3, "indicates_derivation": False,
          "summary": "s", "details": details}
    html = render_report({"pairs": [pair_with({check: ev})]})
    parse(html)
    assert "could not be drawn" not in html
    assert HOSTILE not in html


@pytest.mark.parametrize("check", FRAGMENTS)
def test_not_applicable_evidence_renders_only_its_reason(check: str) -> None:
    ev = {"check": check, "strength": "decisive", "applicable": False, "threshold": 1e-6,
          "summary": "", "reason": "the candidate has no experts", "details": {},
          "outcome": "skipped"}
    dom = parse(render_report({"pairs": [pair_with({check: ev})]}))
    sec = next(s for s in elements(dom, "section") if has_class(s, "check"))
    assert not svgs(sec, "chart") and not elements(sec, "table")
    assert "the candidate has no experts" in text_of(sec)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(
        ["per_matrix", "per_layer", "per_expert", "role", "layer_a", "layer_b", "layer",
         "expert", "z", "cosine", "rho", "log10_p", "consistency_log10_p", "matched",
         "relative_difference", "exact_matches", "candidate", "by_role", "order_test",
         "similarity_matrix", "dimensions_matched", "spearman_rho", "sign_flips"]),
        inner, max_size=5),
    max_leaves=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(details=json_values, threshold=json_values, check=st.sampled_from(FRAGMENTS))
def test_any_json_details_render_valid_html(details: Any, threshold: Any, check: str) -> None:
    ev = {"check": check, "applicable": True, "threshold": threshold, "details": details}
    html = render_report({"pairs": [pair_with({check: ev})]})
    parse(html)
    assert "could not be drawn" not in html


def test_whole_report_with_every_fragment_is_valid_and_self_contained() -> None:
    run = make_run(3)
    for i, pair in enumerate(run["pairs"]):
        for check in FRAGMENTS:
            case = [c for n, c in CASES if n == check][i % 2]
            pair["checks"][check] = evidence(check, case)
    html = render_report(run)
    dom = parse(html)
    assert "could not be drawn" not in html
    for e in dom.iter():
        assert local(e.tag) not in {"script", "img", "link", "iframe", "object", "image", "use"}
        for attr, value in e.attrib.items():
            assert not local(attr).lower().startswith("on")
            assert local(attr).lower() not in {"src", "href"} or value.startswith("#")
    assert not re.search(r"url\s*\(|https?://", " ".join(
        v for e in dom.iter() for v in e.attrib.values()))
    for article in [a for a in elements(dom, "article") if has_class(a, "pair")]:
        names = [text_of(elements(s, "h4")[0]).split()[0]
                 for s in elements(article, "section") if has_class(s, "check")]
        assert set(FRAGMENTS) <= set(names)


# -- the generic primitives -------------------------------------------------------------------


def xml(markup: Any) -> ET.Element:
    return ET.fromstring(str(markup))


def attr(e: ET.Element, name: str) -> float:
    return float(e.get(name) or "nan")


def title_of(e: ET.Element) -> str:
    return e.findtext("title") or ""


def test_dot_rows_places_dots_by_value_on_a_log_axis_and_escapes_labels() -> None:
    chart = xml(plots.dot_rows(
        [{"label": "<b>a</b>", "values": [0.01, 0.1, 1.0, 0.0, None, "x"],
          "tips": ["one", "two", "three", "zero"]}],
        log_x=True, threshold=0.1, threshold_label="t", width=400))
    circles = chart.iter("circle")
    xs = {title_of(c).split(":")[0]: attr(c, "cx") for c in circles}
    assert set(xs) == {"one", "two", "three", "zero"}          # None and "x" are gaps
    assert xs["zero"] < xs["one"] < xs["two"] < xs["three"]    # 0 drawn at the left edge
    assert xs["two"] - xs["one"] == pytest.approx(xs["three"] - xs["two"], abs=0.2)  # log
    thr = next(line for line in chart.iter("line") if line.get("class") == "thr")
    assert attr(thr, "x1") == pytest.approx(xs["two"], abs=0.2)
    assert "<b>" not in str(plots.dot_rows([{"label": "<b>a</b>", "values": [1]}]))


def test_dot_rows_include_widens_the_axis_and_empty_input_says_no_data() -> None:
    narrow = xml(plots.dot_rows([{"label": "r", "values": [40, 41]}], width=300))
    wide = xml(plots.dot_rows([{"label": "r", "values": [40, 41]}], include=[0], width=300))
    ticks = [t.text for t in wide.iter("text") if t.get("class") == "tick"]
    assert "0" in ticks and "0" not in [t.text for t in narrow.iter("text")
                                        if t.get("class") == "tick"]
    assert "no data" in str(plots.dot_rows([None, {"values": "abc"}]))


def test_heat_grid_cells_follow_the_matrix_and_tooltips() -> None:
    chart = xml(plots.heat_grid([[1.0, -0.5], [None, 0.0]], row_labels=["r0", "r1"],
                                col_labels=["c0", "c1"], tips=[["x<y", None]], vmin=-1, vmax=1))
    rects = [r for r in chart.iter("rect") if "cell" in (r.get("class") or "")]
    assert [r.get("class") for r in rects] == ["cell pos", "cell neg", "cell na", "cell pos"]
    assert [r.get("fill-opacity") for r in rects] == ["1.00", "0.50", None, "0.00"]
    assert title_of(rects[0]) == "x<y: 1"
    assert title_of(rects[1]).startswith("row r0 · column c1")
    assert "no data" in str(plots.heat_grid("junk"))


def test_line_chart_reference_line_and_point_labels() -> None:
    chart = xml(svg.line_chart([{"label": "a", "values": [0, 1, 2]}], ref_line=6,
                               ref_label="alpha", point_labels=["L0", "L1", "L2"]))
    thr = next(line for line in chart.iter("line") if line.get("class") == "thr")
    ys = [attr(c, "cy") for c in chart.iter("circle")]
    assert attr(thr, "y1") < min(ys)         # the range grew to show the line above
    assert [title_of(c) for c in chart.iter("circle")] == ["L0: 0", "L1: 1", "L2: 2"]


def test_upper_z_grid_of_and_number_formats() -> None:
    assert plots.upper_z(0.025) == pytest.approx(1.959964, abs=1e-5)
    assert plots.upper_z(1e-6 / 211) == pytest.approx(5.74, abs=0.01)
    assert plots.upper_z(0) is None and plots.upper_z("x") is None
    assert plots.log10(1e-6) == pytest.approx(-6) and plots.log10(0) is None
    g = plots.grid_of([{"r": "b", "c": 2, "v": 1.0}, {"r": "a", "c": 10, "v": 3.0},
                       {"r": "a", "c": 10, "v": 5.0}, {"r": None, "c": 1, "v": 9.0}, "junk"],
                      "r", "c", "v", drop_missing=True)
    assert g["rows"] == ["a", "b"] and g["cols"] == ["2", "10"]     # numeric column order
    assert g["matrix"] == [[None, 4.0], [1.0, None]]                 # duplicates averaged
    assert fmt(1024.0) == "1024" and fmt(-15106.86) == "-15107"
    assert fmt(0.99999999) == "1 − 1e-08"
    assert fmt_p(0.0) == "< 1e-300"


@pytest.mark.parametrize(("applicable", "outcome", "label"), [
    (False, "skipped", "n.a."), (True, "skipped", "no info"), (True, "passed", "pass"),
    (True, "failed", "fail")])
def test_summary_cell_tells_not_applicable_from_no_information(
        applicable: bool, outcome: str, label: str) -> None:
    """An uncalibrated attention_cka or flat seed curves apply but say nothing: the summary
    must not call them 'not applicable'."""
    from modelprint.report.view import CheckView

    c = CheckView(name="x", anchor="a", strength="decisive", applicable=applicable, score=0.9,
                  threshold=0.05, p_value=None, indicates=None if outcome == "skipped" else
                  outcome == "failed", summary="", reason="", outcome=outcome,
                  description="", details={}, raw={})
    assert c.outcome_label == label
    assert c.outcome_class == {"pass": "pass", "fail": "fail"}.get(label, "na")
