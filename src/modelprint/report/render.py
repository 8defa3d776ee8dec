"""Render the result JSON to one self-contained HTML file.

One Jinja environment with ``autoescape=True``: every value from the run (model names, tensor
names, metadata, license excerpts) is untrusted and is escaped on output; charts are
:class:`~markupsafe.Markup` built by :mod:`.svg`, which escapes their text itself.
"""

from __future__ import annotations

import os
import traceback
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, Template
from markupsafe import Markup

from modelprint._atomic import atomic_write_text
from modelprint.report import plots, svg
from modelprint.report.view import (
    CheckView,
    PairView,
    RunView,
    as_dict,
    as_list,
    build_view,
    fmt,
    fmt_p,
    fragment_name,
    generic_entries,
    is_scalar,
    layer_labels,
    numeric_lists,
    pluck,
    scalars,
    text,
    wbr,
    zscore,
)

#: The section of a check that has no template of its own: a table of its scalar details.
DEFAULT_FRAGMENT = "checks/_default.html.j2"


class _Charts:
    """The chart helpers as one namespace in templates: ``charts.line_chart(...)``."""

    line_chart = staticmethod(svg.line_chart)
    null_strip = staticmethod(svg.null_strip)
    heat_strip = staticmethod(svg.heat_strip)
    sparkline = staticmethod(svg.sparkline)
    dot_rows = staticmethod(plots.dot_rows)
    heat_grid = staticmethod(plots.heat_grid)


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` output: strip characters a valid HTML file cannot hold (untrusted
    names may carry control characters or lone surrogates). Markup is left as it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return svg.clean_text(value)
    return value


@cache
def environment() -> Environment:
    """The report's Jinja environment (autoescape on; lenient about missing keys).

    ``ChainableUndefined`` lets a fragment write ``d.null.scores`` when ``null`` is absent;
    the helpers below coerce wrong types, so a partial evidence dict renders what it has.
    """
    env = Environment(loader=PackageLoader("modelprint", "templates"), autoescape=True,
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                      finalize=_finalize)
    env.globals.update(
        charts=_Charts, fmt=fmt, fmt_p=fmt_p, as_dict=as_dict, as_list=as_list,
        numbers=svg.numbers, number=svg.number, zscore=zscore, scalars=scalars,
        numeric_lists=numeric_lists, generic_entries=generic_entries, is_scalar=is_scalar,
        text=text,
        pluck=pluck, layer_labels=layer_labels,
        upper_z=plots.upper_z, log10=plots.log10, group_records=plots.group_records,
        grid_of=plots.grid_of,
    )
    env.filters.update(fmt=fmt, fmt_p=fmt_p, text=text, wbr=wbr)
    return env


def _fragment_templates(env: Environment, check: CheckView) -> Template:
    names = [n for n in (fragment_name(check.name), DEFAULT_FRAGMENT) if n]
    return env.select_template(names)


def render_check(check: CheckView, pair: PairView, env: Environment | None = None) -> Markup:
    """The evidence section body of one check for one pair.

    The check's own fragment ``templates/checks/<name>.html.j2`` when it exists, else the
    generic one. A fragment that fails on unexpected details never stops the report: the
    generic table is shown instead with a note naming the error.
    """
    env = env or environment()
    ctx: dict[str, Any] = {"ev": check, "d": check.details, "pair": pair,
                           "a_name": pair.candidate.name, "b_name": pair.reference.name}
    try:
        return Markup(_fragment_templates(env, check).render(ctx))
    except Exception as exc:  # a report from a broken run must still be written
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        ctx["render_error"] = f"{type(exc).__name__}: {exc}{where}"
        try:
            return Markup(env.get_template(DEFAULT_FRAGMENT).render(ctx))
        except Exception:  # pragma: no cover - the generic fragment only uses coerced data
            return Markup("<p class=\"note\">This section could not be drawn.</p>")


def render_report(run: Any) -> str:
    """The whole report as an HTML string."""
    env = environment()
    view: RunView = build_view(run)
    sections = {(p.anchor, c.name): render_check(c, p, env) for p in view.pairs
                for c in p.checks}
    return env.get_template("report.html.j2").render(
        run=view, sections=sections, library=as_list(as_dict(run).get("library")))


def write_report(run: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Render ``run`` and write it to ``path`` atomically (a reader never sees half a file).

    Parent directories are created. Returns the path written.
    """
    return atomic_write_text(path, render_report(run))
