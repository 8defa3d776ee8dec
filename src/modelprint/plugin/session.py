"""The session's end: gather every pair's result, write the JSON and HTML reports once, and
say where they are.

Items report fragments of pair results on their test reports; this module collects them in
``pytest_runtest_logreport``, which pytest-xdist also calls in the controlling process for
every report a worker sends. Only the controller writes files, and only when at least one
audit item ran (``pytest tests/`` must not leave report files behind, and a run stopped by a
bad audit file must not overwrite the last good report). A failed or interrupted run still
writes what it has.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelprint.engine import build_run, merge_fragments, write_html, write_json
from modelprint.plugin.options import get_state


class ReportWriter:
    """Registered once per pytest process by ``pytest_configure``; holds no state of its own
    (that is :class:`~modelprint.plugin.options.PluginState`)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state = get_state(config)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        fragment = getattr(report, "modelprint", None)
        if fragment is None:
            return
        self.state.fragments.append(fragment)
        if getattr(report, "modelprint_input_error", False):
            self.state.input_error = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self.state
        if state.is_worker:
            return
        if state.input_error and session.exitstatus == pytest.ExitCode.TESTS_FAILED:
            # A model that cannot be read is bad input, like a bad audit file (CONTRACT.md).
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        if not state.fragments or self.config.option.collectonly:
            return
        settings = state.settings
        pairs = merge_fragments([f for f in state.fragments if "library" not in f])
        run = build_run(pairs, alpha=settings.alpha,
                        command=["pytest", *self.config.invocation_params.args])
        screens = {f["key"]: f["library"] for f in state.fragments if f.get("library")}
        if screens:  # the originality gate's screens (plugin.library), one per audit file
            run["library"] = [screens[k] for k in sorted(screens)]
        try:
            write_json(run, settings.json_path)
            state.written.append(("JSON", str(settings.json_path)))
        except OSError as exc:
            state.messages.append(f"result JSON not written to {settings.json_path}: {exc}")
        try:
            path = write_html(run, settings.html_path)
            state.written.append(("HTML", str(path)))
        except RuntimeError as exc:
            state.messages.append(str(exc))
        except Exception as exc:  # a report bug must not hide the outcome
            state.messages.append(f"HTML report failed: {type(exc).__name__}: {exc}")
        state.messages[:0] = [_pair_line(p) for p in pairs]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        if state.is_worker or not (state.written or state.messages):
            return
        terminalreporter.write_sep("-", "modelprint")
        for line in state.messages:
            terminalreporter.write_line(line)
        for kind, path in state.written:
            terminalreporter.write_line(f"{kind} report: {path}")


def _pair_line(pair: dict[str, Any]) -> str:
    ref = pair.get("reference", {})
    cand = pair.get("candidate", {})
    expect = pair.get("expect")
    mark = {"passed": "ok  ", "failed": "FAIL"}.get(pair.get("outcome") or "", "    ")
    tail = f" (expected {expect})" if expect else ""
    return (f"{mark} {pair.get('verdict', '?'):<12} {cand.get('reference', '?')} vs "
            f"{ref.get('name') or ref.get('reference', '?')}{tail}")
