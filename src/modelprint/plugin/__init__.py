"""The pytest plugin (``pytest11`` entry point ``modelprint.plugin``): audit files as tests.

``pytest audits/`` collects every ``*.audit.yaml`` / ``*.audit.yml``; each (reference, check)
becomes an item, plus one verdict item per reference. One module per concern:

- :mod:`.options`    command-line/ini options and the per-session state
- :mod:`.collection` audit files -> nodes (a bad file is a collection error, exit 2)
- :mod:`.items`      check and verdict items: outcomes, user_properties, evidence tables
- :mod:`.session`    gather results (also from xdist workers), write JSON + HTML once

The hooks pytest needs are re-exported here because pytest registers this module.
"""

from __future__ import annotations

import pytest

from modelprint.plugin import options as _options
from modelprint.plugin.collection import pytest_collect_file
from modelprint.plugin.items import pytest_runtest_makereport
from modelprint.plugin.options import pytest_addoption, pytest_unconfigure
from modelprint.plugin.session import ReportWriter


def pytest_configure(config: pytest.Config) -> None:
    _options.pytest_configure(config)
    config.pluginmanager.register(ReportWriter(config), "modelprint-report")


__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_unconfigure",
]
