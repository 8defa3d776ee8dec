"""Two more generic inline-SVG charts (dot rows, heat grid) and the data helpers fragments use
to feed them.

Kept apart from :mod:`.svg` only to keep modules small; the same rules hold: every function
returns :class:`markupsafe.Markup`, every text is escaped here, every number is formatted here,
and odd input (None, NaN, strings, wrong shapes) becomes a gap, never an exception.

* :func:`dot_rows` — one row per category (a tensor role, say), one dot per item on a shared
  x axis (linear or log), with a threshold line. It shows at a glance whether *every* item sits
  on the far side of the line (a copy) or around chance (unrelated), and which items do not.
* :func:`heat_grid` — a matrix of coloured cells (layers x experts, layers x roles), for
  "which parts match" questions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

from markupsafe import Markup, escape

from modelprint.report.svg import (
    _e,
    _f,
    _nice_range,
    _svg_open,
    fmt_tick,
    fmt_value,
    nice_ticks,
    number,
    numbers,
)

#: Most dots drawn per row (longer rows are thinned by striding; the JSON keeps them all).
MAX_DOTS = 400
#: Largest grid drawn (rows, columns); the rest is cut and the title says so.
MAX_GRID = (96, 96)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions (in log10 units) for a log axis: whole decades, or 1-2-5 steps of the
    exponent when the axis spans less than two decades."""
    decades = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    if len(decades) >= 2:
        step = max(1, math.ceil(len(decades) / 7))
        return [float(k) for k in decades[::step]]
    return [math.log10(v) for v in nice_ticks(10 ** lo, 10 ** hi) if v > 0]


def dot_rows(rows: Iterable[Any], *, title: str = "", x_label: str = "",
             threshold: Any = None, threshold_label: str = "", log_x: bool = False,
             include: Sequence[Any] = (), lo: Any = None, hi: Any = None,
             side_labels: Sequence[Any] = (), width: int = 520, row_height: int = 16,
             label_width: int = 84) -> Markup:
    """Dots of several categories on one x axis, one row per category.

    ``rows`` items are dicts ``{"label": str, "values": [...], "tips": [...]}`` (``tips[i]``
    names dot ``i`` in its tooltip). ``include`` lists values the axis must show (0, say,
    so a reader sees how far from chance the dots are); ``lo``/``hi`` fix it instead. With
    ``log_x`` the axis is log10; values at or below 0 are drawn at the left edge (a
    difference of exactly 0 is still shown). ``side_labels`` = (left, right) texts placed on
    either side of the threshold line ("copy" / "unrelated").
    """
    items: list[tuple[str, list[float | None], list[Any]]] = []
    for r in rows:
        if not isinstance(r, Mapping):
            continue
        vals = numbers(r.get("values"))
        tips = r.get("tips")
        if any(v is not None for v in vals):
            items.append((str(r.get("label", "")), vals,
                          list(tips) if isinstance(tips, (list, tuple)) else []))
    label = title or "dot chart"
    has_sides = len(side_labels) == 2 and threshold is not None
    mt = (18 if title else 4) + (14 if has_sides or threshold_label else 0)
    mb = 30 if x_label else 18
    height = mt + max(len(items), 1) * row_height + mb
    out = [_svg_open(width, height, label, "dot-rows")]
    if title:
        out.append(f'<text class="ct" x="2" y="12">{_e(title)}</text>')
    if not items:
        out.append(f'<text class="muted" x="{width / 2:.0f}" y="{mt + 12}" '
                   f'text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))

    def tr(v: float | None) -> float | None:
        if v is None or not log_x:
            return v
        return math.log10(v) if v > 0 else None

    finite = [t for _, vals, _ in items for v in vals if (t := tr(v)) is not None]
    extra = [t for v in (*numbers(list(include)), number(threshold)) if (t := tr(v)) is not None]
    pool = finite + extra
    if not pool:            # only zeros on a log axis
        pool = [-3.0, 0.0]
    a, b = _nice_range(min(pool), max(pool))
    t_line = tr(number(threshold))
    if t_line is not None and a < b:      # room beside the line for its labels
        if t_line >= max(pool):
            b = t_line + 0.25 * (t_line - a)
        elif t_line <= min(pool):
            a = t_line - 0.25 * (b - t_line)
    fixed_lo, fixed_hi = tr(number(lo)), tr(number(hi))
    a = a if fixed_lo is None else fixed_lo
    b = b if fixed_hi is None else fixed_hi
    if not a < b:
        a, b = _nice_range(a, a)
    ml, mr = label_width, 10
    pw = width - ml - mr
    ph = len(items) * row_height

    def x(t: float) -> float:
        return ml + pw * (min(max(t, a), b) - a) / (b - a)

    out.append(f'<rect class="frame" x="{ml}" y="{mt}" width="{pw}" height="{ph}"/>')
    ticks = _log_ticks(a, b) if log_x else nice_ticks(a, b, 6)
    for t in ticks:
        shown = fmt_tick(10 ** t) if log_x else fmt_tick(t)
        out.append(f'<line class="grid" x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{mt}" '
                   f'y2="{mt + ph}"/><text class="tick" x="{_f(x(t))}" y="{mt + ph + 11}" '
                   f'text-anchor="middle">{escape(shown)}</text>')
    if x_label:
        out.append(f'<text class="axis" x="{ml + pw / 2:.0f}" y="{height - 4}" '
                   f'text-anchor="middle">{_e(x_label)}{" (log scale)" if log_x else ""}</text>')
    for k, (name, vals, tips) in enumerate(items):
        cy = mt + (k + 0.5) * row_height
        if k:
            yk = _f(mt + k * row_height)
            out.append(f'<line class="grid" x1="{ml}" x2="{ml + pw}" y1="{yk}" y2="{yk}"/>')
        out.append(f'<text class="tick" x="{ml - 4}" y="{_f(cy + 3)}" text-anchor="end">'
                   f'{_e(name[:24])}</text>')
        step = max(1, math.ceil(len(vals) / MAX_DOTS))
        out.append(f'<g class="series dots ser-a"><title>{_e(name)}</title>')
        for i in range(0, len(vals), step):
            v = vals[i]
            if v is None:
                continue
            t = tr(v)
            px = x(a if t is None else t)
            jitter = ((i * 7) % 5 - 2) * row_height * 0.09
            tip = tips[i] if i < len(tips) and tips[i] is not None else f"{name}"
            out.append(f'<circle cx="{_f(px)}" cy="{_f(cy + jitter)}" r="2.6" '
                       f'fill-opacity="0.55"><title>{_e(tip)}: {_e(fmt_value(v))}</title>'
                       f'</circle>')
        out.append("</g>")
    thr = tr(number(threshold))
    if thr is not None and a <= thr <= b:
        xt = x(thr)
        out.append(f'<line class="thr" x1="{_f(xt)}" x2="{_f(xt)}" y1="{mt - 4}" '
                   f'y2="{mt + ph}"><title>{_e(threshold_label or "threshold")}</title></line>')
        top = mt - 6
        if has_sides:
            left, right = (str(s) for s in side_labels)
            out.append(f'<text class="tick" x="{_f(xt - 4)}" y="{top}" text-anchor="end">'
                       f'{_e(left)}</text><text class="tick" x="{_f(xt + 4)}" y="{top}">'
                       f'{_e(right)}</text>')
        elif threshold_label:
            anchor = "end" if xt > ml + pw * 0.6 else "start"
            out.append(f'<text class="tick" x="{_f(xt + (-4 if anchor == "end" else 4))}" '
                       f'y="{top}" text-anchor="{anchor}">{_e(threshold_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def heat_grid(matrix: Any, *, row_labels: Any = None, col_labels: Any = None, title: str = "",
              x_label: str = "", y_label: str = "", vmin: float = -1.0, vmax: float = 1.0,
              tips: Any = None, cell: int = 16, max_width: int = 560,
              label_width: int = 64) -> Markup:
    """A matrix of cells coloured like :func:`~.svg.heat_strip` (``pos``/``neg`` by sign,
    opacity ``|v| / max(|vmin|, |vmax|)``, gaps hatched grey). ``tips[r][c]`` is a cell's
    tooltip text (else "row · column: value"). Rows are labelled on the left, columns on top
    (thinned when crowded)."""
    rows_in = list(matrix) if isinstance(matrix, (list, tuple)) else []
    grid = [numbers(r) for r in rows_in[:MAX_GRID[0]]]
    n_cols = min(max((len(r) for r in grid), default=0), MAX_GRID[1])
    cut = len(rows_in) > MAX_GRID[0] or any(len(r) > MAX_GRID[1] for r in grid)
    label = (title or "heat grid") + (" (cut)" if cut else "")
    rl = [str(v) for v in row_labels] if isinstance(row_labels, (list, tuple)) else []
    cl = [str(v) for v in col_labels] if isinstance(col_labels, (list, tuple)) else []
    tp = tips if isinstance(tips, (list, tuple)) else []
    mt = (18 if title else 2) + (12 if y_label else 0) + 14
    if not grid or not n_cols:
        out = [_svg_open(max_width, mt + 24, label, "heat-grid")]
        if title:
            out.append(f'<text class="ct" x="2" y="12">{_e(title)}</text>')
        out.append(f'<text class="muted" x="{max_width / 2:.0f}" y="{mt + 12}" '
                   f'text-anchor="middle">no data</text></svg>')
        return Markup("".join(out))
    cw = max(4.0, min(float(cell), (max_width - label_width - 4) / n_cols))
    ch = max(6.0, min(float(cell), 14.0 if len(grid) > 24 else float(cell)))
    ml = label_width
    width = int(ml + n_cols * cw + 4)
    height = int(mt + len(grid) * ch + (16 if x_label else 4))
    # wide enough for the title and axis label (about 6 px per character at 10-11 px)
    width = max(width, 200, int(len(label) * 6.3) + 8, int(ml + len(x_label) * 5.6 + 8))
    out = [_svg_open(width, height, label, "heat-grid")]
    if title:
        out.append(f'<text class="ct" x="2" y="12">{_e(label)}</text>')
    span = max(abs(vmin), abs(vmax)) or 1.0
    every_c = max(1, math.ceil(18 / cw))
    for c in range(0, n_cols, every_c):
        name = cl[c] if c < len(cl) else str(c)
        out.append(f'<text class="tick" x="{_f(ml + (c + 0.5) * cw)}" y="{mt - 3}" '
                   f'text-anchor="middle">{_e(name[:6])}</text>')
    every_r = max(1, math.ceil(11 / ch))
    for r, vals in enumerate(grid):
        y0 = mt + r * ch
        rname = rl[r] if r < len(rl) else str(r)
        if r % every_r == 0:
            out.append(f'<text class="tick" x="{ml - 4}" y="{_f(y0 + ch / 2 + 3)}" '
                       f'text-anchor="end">{_e(rname[:14])}</text>')
        trow = tp[r] if r < len(tp) and isinstance(tp[r], (list, tuple)) else []
        for c in range(n_cols):
            v = vals[c] if c < len(vals) else None
            cname = cl[c] if c < len(cl) else str(c)
            tip = (str(trow[c]) if c < len(trow) and trow[c] is not None
                   else f"{y_label or 'row'} {rname} · {x_label or 'column'} {cname}")
            x0 = ml + c * cw
            if v is None:
                out.append(f'<rect class="cell na" x="{_f(x0)}" y="{_f(y0)}" width="{_f(cw)}" '
                           f'height="{_f(ch)}"><title>{_e(tip)}: n/a</title></rect>')
                continue
            op = min(1.0, abs(v) / span)
            out.append(f'<rect class="cell {"pos" if v >= 0 else "neg"}" x="{_f(x0)}" '
                       f'y="{_f(y0)}" width="{_f(cw)}" height="{_f(ch)}" '
                       f'fill-opacity="{op:.2f}"><title>{_e(tip)}: {_e(fmt_value(v))}</title>'
                       f'</rect>')
    out.append(f'<rect class="strip-frame" x="{ml}" y="{mt}" width="{_f(n_cols * cw)}" '
               f'height="{_f(len(grid) * ch)}"/>')
    if x_label:
        out.append(f'<text class="axis" x="{_f(ml + n_cols * cw / 2)}" y="{height - 3}" '
                   f'text-anchor="middle">{_e(x_label)}</text>')
    if y_label:
        out.append(f'<text class="axis" x="2" y="{mt - 17}">{_e(y_label)} ↓</text>')
    out.append("</svg>")
    return Markup("".join(out))


# -- data helpers for fragments ----------------------------------------------------------------


def upper_z(p: Any) -> float | None:
    """The z with ``P(Z >= z) = p`` for a standard normal Z: where a one-sided significance
    level sits on a z axis. None unless 0 < p < 1."""
    q = number(p)
    if q is None or not 0.0 < q < 1.0:
        return None
    return -NormalDist().inv_cdf(q)


def log10(v: Any) -> float | None:
    """``log10(v)`` for a positive number, else None (templates have no logarithm)."""
    x = number(v)
    return math.log10(x) if x is not None and x > 0 else None


def _sort_key(v: Any) -> tuple[int, float, str]:
    n = number(v)
    return (0, n, "") if n is not None else (1, 0.0, str(v))


def group_records(records: Any, key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Mappings of ``records`` grouped by ``record[key]`` (as text), groups in order of first
    appearance; records that are not mappings are dropped."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records if isinstance(records, (list, tuple)) else []:
        if isinstance(r, Mapping):
            v = r.get(key)
            groups.setdefault("—" if v is None else str(v), []).append(dict(r))
    return list(groups.items())


def grid_of(records: Any, row_key: str, col_key: str, value_key: str | None = None,
            values: Any = None, drop_missing: bool = False) -> dict[str, Any]:
    """Records arranged as a matrix for :func:`heat_grid`: rows by ``record[row_key]``, columns
    by ``record[col_key]`` (numbers in numeric order, other values after them as text), cells
    ``record[value_key]`` (or ``values[i]`` for record ``i``). Several records in one cell are
    averaged. ``drop_missing`` leaves out records without a row or column key (an embedding
    has no layer). Returns ``{"rows", "cols", "matrix", "count"}``."""
    recs = [r if isinstance(r, Mapping) else {}
            for r in (records if isinstance(records, (list, tuple)) else [])]
    vals = numbers(values) if values is not None else [number(r.get(value_key or ""))
                                                       for r in recs]
    cells: dict[tuple[Any, Any], list[float]] = {}
    row_keys: dict[str, Any] = {}
    col_keys: dict[str, Any] = {}
    for r, v in zip(recs, vals, strict=False):
        if not r:
            continue
        rk, ck = r.get(row_key), r.get(col_key)
        if drop_missing and (rk is None or ck is None):
            continue
        row_keys.setdefault(str(rk), rk)
        col_keys.setdefault(str(ck), ck)
        cells.setdefault((str(rk), str(ck)), [])
        if v is not None:
            cells[(str(rk), str(ck))].append(v)
    rows = sorted(row_keys, key=lambda k: _sort_key(row_keys[k]))
    cols = sorted(col_keys, key=lambda k: _sort_key(col_keys[k]))
    matrix = [[(math.fsum(c) / len(c)) if (c := cells.get((rk, ck))) else None for ck in cols]
              for rk in rows]
    return {"rows": ["—" if k == "None" else k for k in rows],
            "cols": ["—" if k == "None" else k for k in cols],
            "matrix": matrix, "count": len(recs)}
