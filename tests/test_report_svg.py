"""The inline-SVG chart helpers: well-formed, escaped, and drawing what they are given."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from modelprint.report import svg


def parse(markup: str) -> ET.Element:
    """SVG inside HTML is also well-formed XML when we write it; parse it as such."""
    return ET.fromstring(str(markup))


def test_line_chart_splits_polylines_at_gaps_and_escapes_labels() -> None:
    chart = svg.line_chart(
        [{"label": "<b>cand</b>", "values": [1, 2, None, 3, 4], "cls": "ser-a"},
         {"label": "ref", "values": [1.0, 2.0, 3.0, 4.0, 5.0], "cls": "ser-b"}],
        title="Q <r> & co")
    root = parse(chart)
    groups = root.findall("g")
    assert len(groups) == 2
    assert len(groups[0].findall("polyline")) == 2      # gap at index 2
    assert len(groups[1].findall("polyline")) == 1
    assert groups[0].findtext("title") == "<b>cand</b>"
    assert "<b>" not in str(chart) and "&lt;b&gt;" in str(chart)
    assert root.findtext("title") == "Q <r> & co"


def test_line_chart_points_stay_inside_the_plot_and_follow_the_values() -> None:
    chart = svg.line_chart([{"label": "a", "values": [0, 1, 2, 3], "cls": "ser-a"}],
                           width=200, height=100)
    pts = [tuple(map(float, p.split(",")))
           for p in parse(chart).find("g").find("polyline").get("points").split()]
    xs, ys = zip(*pts, strict=True)
    assert list(xs) == sorted(xs) and all(0 <= x <= 200 for x in xs)
    assert list(ys) == sorted(ys, reverse=True)          # larger value = higher on screen
    assert all(0 <= y <= 100 for y in ys)


def test_line_chart_treats_non_numbers_as_gaps_and_says_no_data() -> None:
    chart = svg.line_chart([{"label": "x", "values": ["a", True, None, math.nan]}, "junk"])
    assert "no data" in str(chart)
    parse(chart)


def test_unknown_series_class_falls_back_to_a_safe_one() -> None:
    chart = svg.line_chart([{"label": "x", "values": [1, 2, 3], "cls": 'a" onload="x'}])
    assert "onload" not in str(chart)
    assert 'class="series ser-c"' in str(chart)


def test_null_strip_counts_every_score_and_marks_observed_and_threshold() -> None:
    scores = [0.1, 0.12, 0.5, 0.55, 0.56, 0.9, 2.0, -3.0]  # out-of-range ones go to end bins
    chart = svg.null_strip(scores, 0.0, threshold=0.5, lo=-1, hi=1, width=212)
    root = parse(chart)
    counts = [int(re.match(r"(\d+) null", r.findtext("title")).group(1))
              for r in root.iter("rect") if r.get("class") == "bar"]
    assert sum(counts) == len(scores)
    obs = next(ln for ln in root.iter("line") if ln.get("class") == "obs")
    assert float(obs.get("x1")) == 106.0                 # 0 is the middle of [-1, 1]
    thr = next(ln for ln in root.iter("line") if ln.get("class") == "thr")
    assert float(thr.get("x1")) > float(obs.get("x1"))
    assert "observed 0" in str(chart)


def test_null_strip_without_scores_still_marks_the_observed_score() -> None:
    chart = svg.null_strip([], 0.93, threshold=0.95, lo=-1, hi=1)
    assert not [r for r in parse(chart).iter("rect") if r.get("class") == "bar"]
    assert "observed 0.93" in str(chart)


def test_heat_strip_one_cell_per_value_with_sign_and_strength() -> None:
    chart = svg.heat_strip([0.9, -0.5, None, 0.0], labels=["<l0>", "l1"])
    cells = [r for r in parse(chart).iter("rect") if "cell" in (r.get("class") or "")]
    assert [c.get("class") for c in cells] == ["cell pos", "cell neg", "cell na", "cell pos"]
    assert [c.get("fill-opacity") for c in cells] == ["0.90", "0.50", None, "0.00"]
    assert cells[0].findtext("title") == "<l0>: 0.9"
    assert cells[2].findtext("title") == "layer 2: n/a"


@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e6))
def test_nice_ticks_are_ordered_evenly_spaced_and_inside_the_range(lo: float,
                                                                   span: float) -> None:
    hi = lo + span
    ticks = svg.nice_ticks(lo, hi)
    assert len(ticks) >= 2
    assert ticks == sorted(ticks)
    tol = 1e-6 * max(span, abs(lo), abs(hi))
    assert all(lo - tol <= t <= hi + tol for t in ticks)
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    if len(ticks) > 2:
        assert max(steps) - min(steps) <= 1e-6 * max(steps) + tol


def test_sparkline_needs_two_points() -> None:
    assert str(svg.sparkline([1.0])) == ""
    assert "polyline" in str(svg.sparkline([1.0, 2.0, None, 3.0]))


finite_or_odd = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-10**6, 10**6), st.booleans(), st.text(max_size=5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(finite_or_odd, max_size=80), max_size=4), st.text(max_size=20))
def test_charts_are_well_formed_for_any_input(series: list[list[object]], label: str) -> None:
    parse(svg.line_chart([{"label": label, "values": v} for v in series], title=label))
    flat = [x for v in series for x in v]
    parse(svg.null_strip(flat, flat[0] if flat else None, threshold=label, title=label))
    parse(svg.heat_strip(flat, labels=[label] * len(flat), title=label))
    spark = str(svg.sparkline(flat))
    if spark:
        parse(spark)


def test_numbers_are_never_rounded_to_a_whole_number_they_are_not() -> None:
    from modelprint.report.view import fmt, fmt_p

    assert fmt(0.99995) == "0.99995"       # a cosine of 0.99995 is not "1"
    assert fmt(0.999999995) == "1 − 5e-09"
    assert fmt(2.0000001) == "2 + 1e-07"
    assert fmt(1.0) == "1"
    assert fmt(123456.0) == "1.23e+05"
    assert fmt(0.00004) == "4e-05"
    assert fmt(0.123456) == "0.123"
    assert fmt(None) == "—" and fmt(True) == "yes" and fmt(float("nan")) == "NaN"
    assert fmt_p(3e-9) == "3.0e-09" and fmt_p(0.0213) == "0.0213" and fmt_p("x") == "—"
