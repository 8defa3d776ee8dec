"""Shared fixtures: the real models of shared/MODELS.md, and a private cache directory."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from modelprint import realmodels

# Imported once, before any in-process pytester run: pytester removes the modules an inner
# run imported when it ends, and torch's C extension, imported a second time after that,
# failed to initialise ("SystemError: ... bad call flags", then a crash at exit) in a worker
# that ran tests/test_report.py before tests/test_plugin.py. torch is a test dependency
# (`make test`); without it the tests that need it fail on their own import. (The same
# trap as test_plugin's ``_warm_imports``, for a module imported by the test code itself.)
with contextlib.suppress(ImportError):
    import torch  # noqa: F401


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test session gets its own fingerprint cache, so tests never see stale entries.
    Gemma 3 is assembled into a folder outside it (see ``realmodels.gemma3_gguf``)."""
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mp-cache"))


def _real(getter: object) -> Path:
    try:
        return getter()  # type: ignore[operator]
    except Exception as exc:  # the packages are installed by `make test`
        pytest.fail(f"real model not available ({exc}); run `make test` to install it")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return _real(realmodels.minilm_dir)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return _real(realmodels.smollm2_gguf)


@pytest.fixture(scope="session")
def gemma3_gguf() -> Path:
    return _real(realmodels.gemma3_gguf)

# The fuzz corpus holds hostile *.audit.yaml files on purpose: tests/test_fuzz.py feeds them to
# pytest itself; collecting them as audits of this suite would only repeat that as errors.
collect_ignore_glob = ["data/fuzz_corpus/*"]
