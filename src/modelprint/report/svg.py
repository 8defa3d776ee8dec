"""Small inline-SVG charts for the report: line charts, a null-distribution strip, heat strips.

Why hand-drawn SVG: the report must open offline from an e-mail attachment and stay small, so
no plotting library, script or external file is involved; each chart is a few hundred bytes
of markup whose colours come from the page's CSS classes (so light/dark mode and printing
restyle them without re-rendering).

Every function returns :class:`markupsafe.Markup`. Every piece of text that reaches the SVG
(labels, titles) passes through :func:`markupsafe.escape`, and every number is formatted here,
so untrusted model or tensor names cannot inject markup. Inputs are taken as they come from
JSON: ``None``, NaN, infinities, strings and booleans in a value list are treated as gaps, never
as errors, because a chart must never stop a report from being written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

#: Series CSS classes the stylesheet knows (``.ser-a`` is the candidate, ``.ser-b`` the
#: reference); anything else falls back to ``ser-c``.
_CLASS_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
#: Longest value list drawn point by point; longer ones are thinned by striding.
MAX_POINTS = 400
#: Characters HTML/XML forbid or that cannot be written as UTF-8 (controls, lone surrogates,
#: noncharacters); untrusted names may contain them, so they are shown as U+FFFD.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
                        "\ufdd0-\ufdef\ufffe\uffff]")


def clean_text(s: str) -> str:
    """``s`` without characters a valid HTML document cannot contain."""
    return _BAD_CHARS.sub("\ufffd", s)


def _e(v: Any) -> Markup:
    """Escape any value for SVG text or attribute content."""
    return escape(clean_text(str(v)))


#: Larger magnitudes are treated as gaps: no chart needs them, and spans between such values
#: overflow float arithmetic.
MAX_MAGNITUDE = 1e150


def number(v: Any) -> float | None:
    """A finite float, or None for anything that is not a usable number."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:           # a huge int
        return None
    return f if math.isfinite(f) and abs(f) <= MAX_MAGNITUDE else None


def numbers(values: Any) -> list[float | None]:
    """A JSON value as a list of finite floats with None gaps ([] when not a list)."""
    if not isinstance(values, (list, tuple)):
        return []
    return [number(v) for v in values]


def _css_class(name: Any, default: str = "ser-c") -> str:
    return name if isinstance(name, str) and _CLASS_RE.match(name) else default


def fmt_value(v: float, digits: int = 3) -> str:
    """A value for a label (observed score, a table cell): ``digits`` significant digits, but
    never rounded to a whole number it is not — a cosine of 0.99999999 is not "1", and a reader
    takes "1" for identical weights. Up to 5 digits are tried, then "1 − 1e-08" is written."""
    d = max(1, digits)
    out = f"{v:.{d}g}"
    while d < 5 and float(out) != v and float(out).is_integer() and abs(v) < 100:
        d += 1
        out = f"{v:.{d}g}"
    if float(out) != v and float(out).is_integer() and abs(v) < 100:
        whole = round(v)
        gap = v - whole
        return f"{whole} {'+' if gap > 0 else '−'} {abs(gap):.1g}"
    return out


def fmt_tick(v: float) -> str:
    """Compact tick label: 3 significant digits, no trailing zeros."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.1e}"
    return f"{v:.3g}"


def _f(v: float) -> str:
    """A coordinate with one decimal (keeps the markup short)."""
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v) < 1e9 else "0"


def _nice_range(lo: float, hi: float) -> tuple[float, float]:
    if lo == hi:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.06
    return lo - pad, hi + pad


def nice_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
    """Round tick values (1-2-5 steps) inside [lo, hi]; at least the two ends when none fit."""
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return [lo]
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    t = first
    while t <= hi + 1e-9 * span and len(ticks) < 12:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks if len(ticks) >= 2 else [lo, hi]


def _svg_open(width: int, height: int, label: str, cls: str) -> str:
    return (f'<svg class="chart {cls}" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(label)}">'
            f"<title>{_e(label)}</title>")


def _thin(values: list[float | None]) -> tuple[list[int], list[float | None]]:
    step = max(1, math.ceil(len(values) / MAX_POINTS))
    idx = list(range(0, len(values), step))
    return idx, [values[i] for i in idx]


def line_chart(series: Iterable[Any], *, title: str = "", x_label: str = "layer",
               y_label: str = "", width: int = 240, height: int = 150,
               y_range: Sequence[float] | None = None, zero_line: bool = False,
               ref_line: Any = None, ref_label: str = "",
               point_labels: Any = None) -> Markup:
    """Curves over an integer x axis (layer index); ``None`` values leave gaps.

    ``series`` items are dicts ``{"label": str, "values": [...], "cls": "ser-a"}``; items
    that are not dicts or have no usable value are skipped. ``y_range`` fixes the y axis
    (e.g. ``(-1, 1)``); otherwise it spans the data (and ``ref_line``). ``ref_line`` draws a
    dashed horizontal threshold (a significance level, say) labelled ``ref_label``;
    ``point_labels[i]`` names x position ``i`` in the points' tooltips (which layer pair a
    point is), so a reader can hover a point instead of counting ticks.
    """
    ml, mr, mt, mb = 38, 8, 18 if title else 8, 30
    pw, ph = width - ml - mr, height - mt - mb
    rows: list[tuple[str, str, list[float | None]]] = []
    for s in series:
        if not isinstance(s, dict):
            continue
        vals = numbers(s.get("values"))
        if any(v is not None for v in vals):
            rows.append((str(s.get("label", "")), _css_class(s.get("cls")), vals))
    label = title or "chart"
    out = [_svg_open(width, height, label, "line-chart")]
    if title:
        out.append(f'<text class="ct" x="{ml}" y="12">{_e(title)}</text>')
    if not rows:
        out.append(f'<text class="muted" x="{width / 2:.0f}" y="{height / 2:.0f}" '
                   f'text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))
    n = max(len(v) for _, _, v in rows)
    ref = number(ref_line)
    finite = [v for _, _, vals in rows for v in vals if v is not None]
    finite += [ref] if ref is not None else []
    names = point_labels if isinstance(point_labels, (list, tuple)) else []
    rng = [number(v) for v in y_range] if y_range is not None else []
    if len(rng) == 2 and rng[0] is not None and rng[1] is not None and rng[0] < rng[1]:
        lo, hi = float(rng[0]), float(rng[1])
    else:
        lo, hi = _nice_range(min(finite), max(finite))

    def x(i: float) -> float:
        return ml + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return mt + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    out.append(f'<rect class="frame" x="{ml}" y="{mt}" width="{pw}" height="{ph}"/>')
    for t in nice_ticks(lo, hi):
        out.append(f'<text class="tick" x="{ml - 3}" y="{_f(y(t) + 3)}" '
                   f'text-anchor="end">{escape(fmt_tick(t))}</text>'
                   f'<line class="grid" x1="{ml}" x2="{ml + pw}" y1="{_f(y(t))}" '
                   f'y2="{_f(y(t))}"/>')
    if zero_line and lo < 0 < hi:
        out.append(f'<line class="zero" x1="{ml}" x2="{ml + pw}" y1="{_f(y(0))}" '
                   f'y2="{_f(y(0))}"/>')
    if ref is not None and lo <= ref <= hi:
        out.append(f'<line class="thr" x1="{ml}" x2="{ml + pw}" y1="{_f(y(ref))}" '
                   f'y2="{_f(y(ref))}"><title>{_e(ref_label or fmt_value(ref))}</title></line>')
        if ref_label:
            below = y(ref) - mt < 12
            out.append(f'<text class="tick" x="{ml + pw - 2}" '
                       f'y="{_f(y(ref) + (10 if below else -3))}" text-anchor="end">'
                       f'{_e(ref_label)}</text>')
    for t in sorted({0, (n - 1) // 2, n - 1}):
        out.append(f'<text class="tick" x="{_f(x(t))}" y="{mt + ph + 11}" '
                   f'text-anchor="middle">{t}</text>')
    out.append(f'<text class="axis" x="{ml + pw / 2:.0f}" y="{height - 4}" '
               f'text-anchor="middle">{_e(x_label)}</text>')
    if y_label:
        out.append(f'<text class="axis" transform="rotate(-90)" x="{-(mt + ph / 2):.0f}" '
                   f'y="10" text-anchor="middle">{_e(y_label)}</text>')
    for lab, cls, vals in rows:
        idx, pts = _thin(vals)
        out.append(f'<g class="series {cls}"><title>{_e(lab)}</title>')
        seg: list[str] = []
        for i, v in zip(idx, pts, strict=True):
            if v is None:
                if seg:
                    out.append(_polyline(seg))
                seg = []
                continue
            seg.append(f"{_f(x(i))},{_f(y(v))}")
        if seg:
            out.append(_polyline(seg))
        if len(pts) <= 64:
            for i, v in zip(idx, pts, strict=True):
                if v is None:
                    continue
                tip = (f"<title>{_e(names[i])}: {_e(fmt_value(v))}</title>"
                       if i < len(names) and names[i] is not None else "")
                out.append(f'<circle cx="{_f(x(i))}" cy="{_f(y(v))}" r="1.8"'
                           + (f">{tip}</circle>" if tip else "/>"))
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def _polyline(points: list[str]) -> str:
    if len(points) == 1:
        px, py = points[0].split(",")
        return f'<circle cx="{px}" cy="{py}" r="2.2"/>'
    return f'<polyline points="{" ".join(points)}"/>'


def null_strip(scores: Any, observed: Any, *, threshold: Any = None, title: str = "",
               lo: float | None = None, hi: float | None = None, bins: int = 40,
               width: int = 460, height: int = 130, x_label: str = "score") -> Markup:
    """Histogram of a null distribution (scores of independent pairs) with the observed score
    marked, and the threshold as a dashed line, so a reader sees whether a score is unusual.

    The x range defaults to the data (null, observed, threshold) padded a little; give
    ``lo``/``hi`` for a fixed scale such as correlations in [-1, 1].
    """
    vals = [v for v in numbers(scores) if v is not None]
    obs, thr = number(observed), number(threshold)
    label = title or "null distribution"
    ml, mr, mt, mb = 12, 12, 32, 30
    pw, ph = width - ml - mr, height - mt - mb
    out = [_svg_open(width, height, label, "null-strip")]
    out.append(f'<text class="ct" x="{ml}" y="12">{_e(title)}</text>')
    pool = [*vals, *(v for v in (obs, thr) if v is not None)]
    if not pool:
        out.append(f'<text class="muted" x="{width / 2:.0f}" y="{height / 2:.0f}" '
                   f'text-anchor="middle">no null scores</text></svg>')
        return Markup("".join(out))
    a, b = _nice_range(min(pool), max(pool))
    a = a if lo is None else float(lo)
    b = b if hi is None else float(hi)
    if not a < b:
        a, b = _nice_range(a, a)

    def x(v: float) -> float:
        return ml + pw * (min(max(v, a), b) - a) / (b - a)

    out.append(f'<line class="base" x1="{ml}" x2="{ml + pw}" y1="{mt + ph}" y2="{mt + ph}"/>')
    bins = max(1, int(bins))
    if vals:
        counts = [0] * bins
        for v in vals:
            k = int((min(max(v, a), b) - a) / (b - a) * bins)
            counts[min(k, bins - 1)] += 1
        top = max(counts)
        bw = pw / bins
        for k, c in enumerate(counts):
            if c:
                h = ph * c / top
                out.append(f'<rect class="bar" x="{_f(ml + k * bw + 0.5)}" '
                           f'y="{_f(mt + ph - h)}" width="{_f(max(bw - 1, 0.5))}" '
                           f'height="{_f(h)}"><title>{c} null pair(s) in '
                           f'[{escape(fmt_tick(a + k * (b - a) / bins))}, '
                           f'{escape(fmt_tick(a + (k + 1) * (b - a) / bins))})</title></rect>')
    for t in nice_ticks(a, b, 6):
        out.append(f'<text class="tick" x="{_f(x(t))}" y="{mt + ph + 11}" '
                   f'text-anchor="middle">{escape(fmt_tick(t))}</text>')
    out.append(f'<text class="axis" x="{ml + pw / 2:.0f}" y="{height - 4}" '
               f'text-anchor="middle">{_e(x_label)}</text>')
    if thr is not None:
        out.append(f'<line class="thr" x1="{_f(x(thr))}" x2="{_f(x(thr))}" y1="{mt}" '
                   f'y2="{mt + ph}"><title>threshold {_e(fmt_value(thr))}</title></line>')
    if obs is not None:
        xo = x(obs)
        anchor = "end" if xo > ml + pw * 0.75 else "start"
        dx = -4 if anchor == "end" else 4
        out.append(f'<line class="obs" x1="{_f(xo)}" x2="{_f(xo)}" y1="{mt - 12}" '
                   f'y2="{mt + ph}"/><text class="obs-label" x="{_f(xo + dx)}" y="{mt - 4}" '
                   f'text-anchor="{anchor}">observed {_e(fmt_value(obs))}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def heat_strip(values: Any, *, labels: Any = None, title: str = "", vmin: float = -1.0,
               vmax: float = 1.0, width: int = 520, cell_height: int = 18) -> Markup:
    """One coloured cell per value (e.g. per-layer centred correlation), diverging around 0:
    ``pos`` cells for positive values, ``neg`` for negative, opacity = |v| / range. Gaps
    (None) are drawn hatched-grey and labelled "n/a" in the tooltip."""
    vals = numbers(values)
    labs = labels if isinstance(labels, (list, tuple)) else []
    label = title or "heat strip"
    mt = 18 if title else 2
    height = mt + cell_height + 16
    out = [_svg_open(width, height, label, "heat-strip")]
    if title:
        out.append(f'<text class="ct" x="2" y="12">{_e(title)}</text>')
    if not vals:
        out.append(f'<text class="muted" x="{width / 2:.0f}" y="{mt + 12}" '
                   f'text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))
    n = len(vals)
    cw = (width - 4) / n
    span = max(abs(vmin), abs(vmax)) or 1.0
    for i, v in enumerate(vals):
        name = _e(labs[i]) if i < len(labs) else Markup(f"layer {i}")
        x0 = 2 + i * cw
        if v is None:
            out.append(f'<rect class="cell na" x="{_f(x0)}" y="{mt}" width="{_f(cw)}" '
                       f'height="{cell_height}"><title>{name}: n/a</title></rect>')
            continue
        cls = "pos" if v >= 0 else "neg"
        op = min(1.0, abs(v) / span)
        out.append(f'<rect class="cell {cls}" x="{_f(x0)}" y="{mt}" width="{_f(cw)}" '
                   f'height="{cell_height}" fill-opacity="{op:.2f}"><title>{name}: '
                   f'{_e(fmt_value(v))}</title></rect>')
    out.append(f'<rect class="strip-frame" x="2" y="{mt}" width="{_f(width - 4)}" '
               f'height="{cell_height}"/>')
    ty = mt + cell_height + 12
    for i in sorted({0, (n - 1) // 2, n - 1}):
        out.append(f'<text class="tick" x="{_f(2 + (i + 0.5) * cw)}" y="{ty}" '
                   f'text-anchor="middle">{i}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: Any, *, width: int = 160, height: int = 28) -> Markup:
    """A tiny unlabelled curve for numeric lists in the generic key/value table."""
    vals = numbers(values)
    finite = [v for v in vals if v is not None]
    if len(finite) < 2:
        return Markup("")
    idx, pts = _thin(vals)
    lo, hi = _nice_range(min(finite), max(finite))
    n = len(vals)
    seg: list[str] = []
    lines: list[str] = []
    for i, v in zip(idx, pts, strict=True):
        if v is None:
            if seg:
                lines.append(_polyline(seg))
            seg = []
            continue
        px = 2 + (width - 4) * i / max(n - 1, 1)
        py = 2 + (height - 4) * (1 - (v - lo) / (hi - lo))
        seg.append(f"{_f(px)},{_f(py)}")
    if seg:
        lines.append(_polyline(seg))
    return Markup(f'<svg class="chart spark" viewBox="0 0 {width} {height}" width="{width}" '
                  f'height="{height}" aria-hidden="true"><g class="series ser-a">'
                  f'{"".join(lines)}</g></svg>')
