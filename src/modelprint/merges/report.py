"""The decomposition for people: a terminal table and a self-contained HTML page.

The HTML page holds no script and no external file (like the audit report): the per-layer
weights are an inline SVG line chart (``report/svg.py``), every name passes through
``markupsafe.escape`` -- model names and paths are untrusted text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from modelprint._atomic import atomic_write_text

if TYPE_CHECKING:
    from modelprint.merges.decompose import Decomposition

_CLASSES = ("ser-a", "ser-b", "ser-c")


def text(d: Decomposition) -> str:
    """The terminal report: weights with intervals, method, fit, per-layer profile."""
    lines = [f"candidate: {d.candidate}", f"source:    {d.source} "
             f"({d.slots} tensors sampled)", ""]
    width = max([len(p.name) for p in d.parents] + [6])
    lines.append(f"{'parent'.ljust(width)}  weight        95% interval    alone   parent?")
    for p in d.parents:
        w = p.weight
        lines.append(f"{p.name.ljust(width)}  {w.value:6.3f} ± {w.sd:5.3f}  "
                     f"[{w.lo:6.3f}, {w.hi:6.3f}]  {p.alone:6.1%}  "
                     f"{'yes' if p.is_parent else 'NO'}")
    if d.base is not None and d.base_weight is not None:
        b = d.base_weight
        lines.append(f"{('base ' + d.base).ljust(width)}  {b.value:6.3f} ± {b.sd:5.3f}  "
                     f"[{b.lo:6.3f}, {b.hi:6.3f}]")
    lines += ["", f"method:    {d.method}" + (f" -- {d.method_note}" if d.method_note else ""),
              f"explained: {d.explained.value:.4f} of the candidate"
              + (" change from the base" if d.base else "")]
    if d.per_layer and len(d.per_layer) > 1:
        lines.append("")
        lines.append("layer  " + "  ".join(p.name[:12].rjust(12) for p in d.parents))
        for layer, ests in sorted(d.per_layer.items()):
            lines.append(f"{layer:5d}  " + "  ".join(f"{e.value:5.2f}±{e.sd:4.2f}".rjust(12)
                                                    for e in ests))
    lines += ["", "nearest mergekit recipe:", d.mergekit_yaml.rstrip(), "",
              f"decomposition: {d.summary}"]
    return "\n".join(lines)


def chart(d: Decomposition) -> Markup:
    """Per-layer weight of each parent, one line each."""
    from modelprint.report.svg import line_chart

    layers = sorted(d.per_layer)
    series = [{"label": p.name, "cls": _CLASSES[i % len(_CLASSES)],
               "values": [d.per_layer[layer][i].value for layer in layers]}
              for i, p in enumerate(d.parents)]
    return line_chart(series, title="weight per layer", y_label="weight", width=520,
                      height=220, y_range=(0.0, 1.0),
                      point_labels=[f"layer {x}" for x in layers])


_CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #ccc;text-align:left}
pre{background:#f4f4f4;padding:.6rem;overflow:auto}.no{color:#a00;font-weight:600}
svg text{font-size:10px;fill:currentColor}.ser-a{stroke:#1f77b4;fill:#1f77b4}
.ser-b{stroke:#d62728;fill:#d62728}.ser-c{stroke:#2ca02c;fill:#2ca02c}
polyline{fill:none;stroke-width:1.5}.grid line,line.grid{stroke:#ddd}
@media (prefers-color-scheme:dark){body{background:#111;color:#eee}pre{background:#222}}"""


def html(d: Decomposition) -> str:
    e = escape
    rows = "".join(
        f"<tr><td>{e(p.name)}</td><td>{p.weight.value:.3f} ± {p.weight.sd:.3f}</td>"
        f"<td>[{p.weight.lo:.3f}, {p.weight.hi:.3f}]</td><td>{p.alone:.1%}</td>"
        f"<td>{'yes' if p.is_parent else Markup('<span class=no>no</span>')}</td></tr>"
        for p in d.parents)
    base = ""
    if d.base is not None and d.base_weight is not None:
        b = d.base_weight
        base = (f"<tr><td>base {e(d.base)}</td><td>{b.value:.3f} ± {b.sd:.3f}</td>"
                f"<td>[{b.lo:.3f}, {b.hi:.3f}]</td><td></td><td></td></tr>")
    chart_html = chart(d) if len(d.per_layer) > 1 else Markup("")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>modelprint decompose: {e(d.candidate)}</title><style>{_CSS}</style><body>"
        f"<h1>Merge decomposition</h1><p><b>{e(d.candidate)}</b></p>"
        f"<p>{e(d.summary)}</p>"
        "<table><tr><th>parent</th><th>weight</th><th>95 % interval</th>"
        "<th>explains alone</th><th>parent?</th></tr>"
        f"{rows}{base}</table>"
        f"<p>Method: <b>{e(d.method)}</b>. {e(d.method_note)}</p>"
        f"<p>Fit: explains {d.explained.value:.4f} of the candidate"
        f"{' change from the base' if d.base else ''}; from {e(d.source)} "
        f"({d.slots} tensors sampled), in {d.seconds:.1f} s.</p>"
        f"{chart_html}<h2>Nearest mergekit recipe</h2><pre>{e(d.mergekit_yaml)}</pre>"
        "<p>Weights: constrained least squares on the same sampled positions of every "
        "model, float64; intervals: Poisson bootstrap over sampled rows (200 replicates). "
        "A model is not a parent when its interval reaches 0 or its weight is below 0.01."
        "</p></body></html>\n")


def write_html(d: Decomposition, path: Path) -> Path:
    atomic_write_text(path, html(d))
    return path
