"""The HTML evidence report: one self-contained file a decision-maker can read in a minute.

``write_report(run, path)`` renders the result JSON (``modelprint.result/1``, written by the
audit engine) to a single HTML file with no external resources — no network, CDN, script or
font — so it opens offline from an e-mail attachment and prints cleanly to PDF. Layout:
summary table (failed audits first), evidence per pair and check, what each check can and
cannot show (each evidence's ``description``), provenance.

How a check gets its own evidence section
-----------------------------------------
The report never special-cases a check in Python. For each ``pairs[i].checks[NAME]`` it
renders the template ``templates/checks/NAME.html.j2`` if it exists, else
``templates/checks/_default.html.j2`` (a key/value table of the scalar entries of
``details`` and a sparkline per numeric list). To add a section for a new check:

1. put the chart data in ``Evidence.details`` (plain JSON: numbers, lists, dicts);
2. add ``src/modelprint/templates/checks/NAME.html.j2``. It receives

   - ``ev``: the evidence (:class:`~modelprint.report.view.CheckView`: ``score``,
     ``threshold``, ``p_value``, ``summary``, ``reason``, ``applicable``, ``raw`` …),
   - ``d``: ``ev.details`` as a dict (missing keys are lenient: ``d.a.b`` renders empty),
   - ``pair``, ``a_name`` (candidate) and ``b_name`` (reference display names),
   - helpers: ``charts.line_chart / null_strip / heat_strip / sparkline / dot_rows /
     heat_grid`` (inline SVG; :mod:`.svg`, :mod:`.plots`), ``numbers`` (list → floats with
     None gaps), ``as_dict``, ``as_list``, ``pluck``, ``zscore``, ``fmt``, ``fmt_p``,
     ``scalars``, ``upper_z`` (where a one-sided alpha sits on a z axis), ``log10``,
     ``group_records`` and ``grid_of`` (records → rows of dots / a matrix); macros in
     ``checks/_macros.html.j2`` and, for the hidden-unit checks, ``checks/_units.html.j2``.

   A fragment may end with ``{% include "checks/_default.html.j2" %}`` to list the
   entries it does not draw (``checks/attention_cka.html.j2`` is a short example).
   Write it so a partial ``details`` dict still renders (coerce with ``as_dict`` /
   ``as_list`` / ``numbers``); if it raises anyway, the default section is shown with a note.
3. add a case to ``tests/report_fixtures.py`` or, better, compute real details with the
   check on small synthetic models as ``tests/fragment_cases.py`` does, so the report tests
   exercise it with the keys the check really writes.

Everything is autoescaped; never mark untrusted text ``|safe``.
"""

from __future__ import annotations

from modelprint.report.render import render_report, write_report

__all__ = ["render_report", "write_report"]
