"""The originality gate: ``library: PATH`` in an audit file.

::

    audits/x.audit.yaml
      ::library                 LibraryNode   (screens the candidate: modelprint.library)
        ::original              GateItem      (expect: independent -- fails when any library
                                               model is found a parent; ``::derived`` with
                                               expect: derived -- fails unless one is)
        ::<entry name> ...      MatchItem     (one per library model found related)

Unlike reference nodes, this one has to screen during collection: which library models are
found decides which items exist. The screen is deterministic, so pytest-xdist workers
collect the same items. A candidate or library that cannot be read is a collection error
(pytest exit 2), like a bad audit file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelprint.errors import InputError
from modelprint.plugin.items import SECTION, AuditFailure, AuditItem
from modelprint.plugin.options import get_state
from modelprint.spec import AuditSpec


class LibraryNode(pytest.Collector):
    """The candidate screened against the audit's library."""

    def __init__(self, *, spec: AuditSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.identification: Any = None

    def collect(self) -> Iterator[pytest.Item]:
        from modelprint.library import ModelLibrary
        from modelprint.library.identify import identify

        state = get_state(self.config)
        spec = self.spec
        alpha = spec.alpha if spec.alpha is not None else state.settings.alpha
        try:
            with ModelLibrary(spec.library or "") as lib:
                self.identification = identify(
                    spec.candidate.reference, lib, alpha=alpha,
                    base_dir=spec.candidate.base_dir, offline=state.engine.offline)
        except InputError as exc:
            raise self.CollectError(f"{spec.path}:{spec.library_line}: {exc}") from None
        gate = "derived" if spec.expect == "derived" else "original"
        yield GateItem.from_parent(self, name=gate)
        for match in self.identification.matches:
            if match.related:
                yield MatchItem.from_parent(self, name=match.name, match=match)

    @property
    def order(self) -> list[Any]:
        return [self.parent.nodeid if self.parent else "", -1]


class _LibraryItem(AuditItem):
    """Common ground: the fragment carries the identification for the report."""

    @property
    def node(self) -> LibraryNode:
        return self.parent  # type: ignore[return-value]

    def _base_fragment(self) -> dict[str, Any]:
        return {"key": self.node.nodeid, "order": self.node.order}

    def _header(self) -> dict[str, Any]:
        return {"audit": self.node.parent.nodeid if self.node.parent else None}

    def error_fragment(self, exc: BaseException) -> dict[str, Any]:
        return {**self._base_fragment(), "library": None,
                "error": " ".join(f"{type(exc).__name__}: {exc}".split())}

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, self.node.spec.library_line - 1, self.nodeid

    def _library_fragment(self) -> dict[str, Any]:
        doc = self.node.identification.to_json()
        doc["matches"] = [{k: v for k, v in m.items() if k != "pair"} for m in doc["matches"]]
        doc["audit"] = self.node.parent.nodeid if self.node.parent else None
        doc["expect"] = self.node.spec.expect
        return {**self._base_fragment(), "library": doc}


class GateItem(_LibraryItem):
    """``::library::original``: no library model is a parent of the candidate."""

    def _run(self) -> None:
        ident = self.node.identification
        self._fragment = self._library_fragment()
        for key, value in (("library", ident.library), ("entries", ident.entries),
                           ("tests", ident.n_tests), ("alpha", ident.alpha),
                           ("verdict", ident.verdict()), ("parents", len(ident.parents))):
            self.user_properties.append((key, value))
        from modelprint.commands.identify import table

        text = table(ident)
        self.add_report_section("call", SECTION, f"{ident.summary()}\n{text}")
        expect_derived = self.node.spec.expect == "derived"
        if expect_derived and ident.original:
            raise AuditFailure(f"library: expected derived from a library model, "
                               f"{ident.summary()}", text)
        if not expect_derived and not ident.original:
            raise AuditFailure(f"library: not original -- {ident.summary()}", text)


class MatchItem(_LibraryItem):
    """``::library::<entry>``: one library model the candidate is related to."""

    def __init__(self, *, match: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.match = match

    @property
    def item_check(self) -> str:
        return f"library:{self.match.name}"

    def _run(self) -> None:
        m = self.match
        for key, value in (("entry", m.name), ("reference", m.reference), ("rank", m.rank),
                           ("prefilter", m.prefilter), ("verdict", m.verdict),
                           ("p_value", m.p_value), ("relation", m.relation or "unknown"),
                           ("direction_reason", m.direction_reason)):
            if value is not None:
                self.user_properties.append((key, value))
        from modelprint.engine import evidence_table

        text = evidence_table(m.pair["checks"])
        self.add_report_section("call", SECTION, f"{m.name}: {m.reason}\n{text}")
        relation = {"parent": "its parent", "child": "derived from the candidate"}.get(
            m.relation or "", "related, direction unknown")
        message = f"library model {m.name} is {relation} ({m.direction_reason}): {m.reason}"
        if m.is_parent and self.node.spec.expect != "derived":
            raise AuditFailure(message, text)
