"""The test items: one per (reference, check) and one verdict per reference.

An item asks the engine (``modelprint.engine``) for the outcome and turns it into pytest's
vocabulary: skipped with the reason when a check does not apply, failed with a readable
evidence table when the audit's expectation does not hold. Its numbers go into
``user_properties`` (kept by ``--junitxml`` and carried by pytest-xdist), and the JSON
fragment of the result goes onto the test report as ``report.modelprint`` so the controlling
process can assemble the result JSON however the items were distributed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from modelprint.engine import FAILED, SKIPPED, Pair, evidence_table
from modelprint.errors import InputError

if TYPE_CHECKING:
    from modelprint.plugin.collection import ReferenceNode

SECTION = "modelprint evidence"


class AuditFailure(Exception):
    """The audit's expectation does not hold; ``repr_failure`` shows the evidence."""

    def __init__(self, message: str, table: str) -> None:
        super().__init__(message)
        self.message = message
        self.table = table


class AuditItem(pytest.Item):
    """Common ground of check and verdict items."""

    _fragment: dict[str, Any] | None = None
    _input_error: bool = False

    @property
    def reference_node(self) -> ReferenceNode:
        return self.parent  # type: ignore[return-value]

    @property
    def pair(self) -> Pair:
        return self.reference_node.pair

    def _base_fragment(self) -> dict[str, Any]:
        node = self.reference_node
        return {"key": node.nodeid, "order": node.order}

    def _header(self) -> dict[str, Any]:
        try:
            return self.pair.header_json()
        except Exception:  # the header is best effort when the pair is broken
            return {"audit": self.reference_node.parent.nodeid if self.reference_node.parent
                    else None, "reference": {"reference": self.reference_node.ref.reference,
                                             "name": self.reference_node.ref.name},
                    "expect": self.reference_node.spec.expect}

    def error_fragment(self, exc: BaseException) -> dict[str, Any]:
        return {**self._base_fragment(), "header": self._header(), "check": self.item_check,
                "error": " ".join(f"{type(exc).__name__}: {exc}".split())}

    @property
    def item_check(self) -> str:
        return "verdict"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        exc = excinfo.value
        if isinstance(exc, AuditFailure):
            return f"{exc.message}\n\n{exc.table}"
        if isinstance(exc, InputError):  # a model that cannot be read: one line, no traceback
            return f"modelprint: {exc}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        # the reference's line in the audit file (0-based, as pytest expects)
        return self.path, self.reference_node.ref.line - 1, self.nodeid

    def _run(self) -> None:
        raise NotImplementedError

    def runtest(self) -> None:
        try:
            self._run()
        except InputError:
            self._input_error = True
            raise


class CheckItem(AuditItem):
    """``path::<reference>::<check>``."""

    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    @property
    def item_check(self) -> str:
        return self.check

    def _run(self) -> None:
        self.reference_node.prefetch()
        pair = self.pair
        outcome = pair.check_outcome(self.check)
        result = pair.check_json(self.check)
        self._fragment = {**self._base_fragment(), "header": pair.header_json(),
                          "check": self.check, "result": result}
        self.user_properties.append(("check", self.check))
        for key in ("strength", "score", "threshold", "p_value", "indicates_derivation"):
            if result.get(key) is not None:
                self.user_properties.append((key, result[key]))
        self.user_properties.append(("outcome", outcome.status))
        table = evidence_table({self.check: result})
        self.add_report_section("call", SECTION, table)
        if outcome.status == SKIPPED:
            pytest.skip(outcome.message)
        if outcome.status == FAILED:
            raise AuditFailure(f"{self.reference_node.ref.name}: {outcome.message}", table)


class VerdictItem(AuditItem):
    """``path::<reference>::verdict``: the combined verdict against the expectation."""

    def _run(self) -> None:
        pair = self.pair
        full = pair.to_json()
        self._fragment = {**self._base_fragment(), "pair": full}
        outcome = pair.verdict_outcome()
        for key, value in (("verdict", full["verdict"]), ("expect", pair.expect),
                           ("alpha", pair.alpha), ("tests", pair.n_tests),
                           ("verdict_reason", full["verdict_reason"])):
            self.user_properties.append((key, value))
        table = evidence_table(full["checks"])
        self.add_report_section("call", SECTION,
                                f"verdict: {full['verdict']} ({full['verdict_reason']})\n{table}")
        if outcome.status == FAILED:
            raise AuditFailure(f"{self.reference_node.ref.name}: {outcome.message}", table)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Any:
    """Attach the item's result fragment to its call report (xdist serialises it)."""
    report = yield
    if isinstance(item, AuditItem) and call.when == "call":
        fragment = item._fragment
        if fragment is None and call.excinfo is not None:
            fragment = item.error_fragment(call.excinfo.value)
        report.modelprint = fragment
        report.modelprint_input_error = item._input_error
        if report.skipped and isinstance(report.longrepr, tuple):
            # point "SKIPPED [1] file:line: reason" at the audit file, not at this module
            path, line, _ = item.reportinfo()
            report.longrepr = (str(path), (line or 0) + 1, report.longrepr[2])
    return report
