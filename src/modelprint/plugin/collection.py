"""Collect ``*.audit.yaml`` files into a tree of pytest nodes::

    audits/x.audit.yaml                 AuditFile        (a bad file is a collection error)
      ::qwen2.5-14b                     ReferenceNode    (one per reference: one Pair)
        ::attention_std ...             CheckItem        (one per selected check)
        ::verdict                       VerdictItem

Models are not read during collection: ``-k``, ``--lf`` and xdist workers load only what the
selected items need. The audit file itself is validated fully here, including that every
local model file exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelprint.engine import Pair, Target, count_decisive
from modelprint.errors import AuditSpecError
from modelprint.plugin.items import CheckItem, VerdictItem
from modelprint.plugin.options import get_state
from modelprint.spec import AuditSpec, ModelSpec, is_audit_file, load_audit


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> AuditFile | None:
    if is_audit_file(file_path.name):
        return AuditFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return,unused-ignore]
    return None


class AuditFile(pytest.File):
    """One audit file."""

    def collect(self) -> Iterator[pytest.Collector]:
        try:
            spec = load_audit(self.path)
        except AuditSpecError as exc:
            raise self.CollectError(str(exc)) from None
        state = get_state(self.config)
        registry = state.engine.registry
        selected = spec.checks if spec.checks is not None else {n: {} for n in registry}
        n_tests = len(spec.references) * max(1, count_decisive(registry, selected))
        for index, ref in enumerate(spec.references):
            yield ReferenceNode.from_parent(self, name=ref.name, spec=spec, ref=ref,
                                            index=index, n_tests=n_tests)
        if spec.library is not None:
            from modelprint.plugin.library import LibraryNode

            yield LibraryNode.from_parent(self, name="library", spec=spec)


class ReferenceNode(pytest.Collector):
    """The candidate against one reference; owns the (lazily built) :class:`Pair`."""

    def __init__(self, *, spec: AuditSpec, ref: ModelSpec, index: int, n_tests: int,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.ref = ref
        self.index = index
        self.n_tests = n_tests
        self._pair: Pair | None = None
        self._prefetched = False

    def collect(self) -> Iterator[pytest.Item]:
        registry = get_state(self.config).engine.registry
        names = list(self.spec.checks) if self.spec.checks is not None else list(registry)
        for name in names:
            yield CheckItem.from_parent(self, name=name, check=name)
        yield VerdictItem.from_parent(self, name="verdict")

    def prefetch(self) -> None:
        """Compute, side by side (``Engine.evidence_many``), the checks this session's items
        of this reference will ask for one by one -- all of them when its verdict item runs.

        Once per reference, and not on a pytest-xdist worker (it runs only some of the items
        it collected; computing the others would repeat another worker's work). A failure
        here is left for the items to meet: each asks for its own check again and reports
        its own error."""
        if self._prefetched or hasattr(self.config, "workerinput"):
            return
        self._prefetched = True
        mine = [item for item in self.session.items if item.parent is self]
        # any error (a model that cannot be read, a failing check) is the items' to report
        with contextlib.suppress(Exception):
            pair = self.pair
            names = (list(pair.checks) if any(item.name == "verdict" for item in mine) else
                     [item.check for item in mine
                      if isinstance(item, CheckItem) and item.check in pair.checks])
            if len(names) >= 2:
                pair.engine.evidence_many(pair.candidate, pair.reference,
                                          {n: pair.checks[n] for n in names})

    @property
    def pair(self) -> Pair:
        if self._pair is None:
            state = get_state(self.config)
            spec = self.spec
            alpha = spec.alpha if spec.alpha is not None else state.settings.alpha
            self._pair = state.engine.pair(
                _target(spec.candidate), _target(self.ref),
                checks=spec.checks, expect=spec.expect, alpha=alpha,
                n_tests=self.n_tests, audit=self.parent.nodeid if self.parent else None,
            )
        return self._pair

    @property
    def order(self) -> list[Any]:
        """Sort key of this pair in the report: audit file, then reference position."""
        return [self.parent.nodeid if self.parent else "", self.index]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, AuditSpecError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def _target(spec: ModelSpec) -> Target:
    return Target(spec.reference, spec.base_dir, spec.name)


__all__ = ["AuditFile", "ReferenceNode", "pytest_collect_file"]
