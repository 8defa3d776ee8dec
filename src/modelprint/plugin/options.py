"""Command-line and ini options, and the per-session state the other plugin modules share.

Every option works on the command line (``--modelprint-json PATH``) and in the ini file
(``modelprint_json = PATH``); the command line wins. Relative paths are taken from the
directory pytest was started in (command line) or the ini file's directory (ini, defaults).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelprint.engine import DEFAULT_ALPHA, Engine

DEFAULT_JSON = "reports/audit.json"
DEFAULT_HTML = "reports/audit.html"


@dataclass
class Settings:
    json_path: Path
    html_path: Path
    alpha: float
    offline: bool
    cache_dir: Path | None


@dataclass
class PluginState:
    """What one pytest process knows about the audits it runs."""

    settings: Settings
    engine: Engine
    is_worker: bool
    #: Fragments of pair results reported by items (from this process or xdist workers).
    fragments: list[dict[str, Any]] = field(default_factory=list)
    #: A model that could not be read: the session exits 2, like a bad audit file.
    input_error: bool = False
    written: list[tuple[str, str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    saved_env: dict[str, str | None] = field(default_factory=dict)


STATE_KEY = pytest.StashKey[PluginState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelprint", "modelprint audits (*.audit.yaml)")
    specs: list[tuple[str, str, str, str]] = [
        ("json", "PATH", "string", f"where to write the result JSON (default {DEFAULT_JSON})"),
        ("html", "PATH", "string", f"where to write the HTML report (default {DEFAULT_HTML})"),
        ("cache-dir", "DIR", "string", "fingerprint cache directory (MODELPRINT_CACHE_DIR)"),
        ("alpha", "ALPHA", "string",
         f"family-wise significance level of the verdict (default {DEFAULT_ALPHA:g}); "
         "an audit file's own 'alpha:' takes precedence"),
    ]
    for name, metavar, kind, helptext in specs:
        dest = "modelprint_" + name.replace("-", "_")
        group.addoption(f"--modelprint-{name}", dest=dest, metavar=metavar, default=None,
                        help=helptext)
        parser.addini(dest, helptext, type=kind, default=None)  # type: ignore[arg-type]
    group.addoption("--modelprint-offline", dest="modelprint_offline", action="store_true",
                    default=None, help="never contact the Hugging Face hub (HF_HUB_OFFLINE=1)")
    parser.addini("modelprint_offline", "never contact the Hugging Face hub", type="bool",
                  default=False)


def _path(config: pytest.Config, name: str, default: str | None) -> Path | None:
    cli = config.getoption(name)
    if cli:
        return (config.invocation_params.dir / Path(cli).expanduser()).resolve()
    base = config.inipath.parent if config.inipath else config.rootpath
    ini = config.getini(name)
    value = ini if ini else default
    if not value:
        return None
    return (base / Path(str(value)).expanduser()).resolve()


def _alpha(config: pytest.Config) -> float:
    raw = config.getoption("modelprint_alpha") or config.getini("modelprint_alpha")
    if not raw:
        return DEFAULT_ALPHA
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"--modelprint-alpha: not a number: {raw!r}") from None
    if not 0.0 < value < 1.0:
        raise pytest.UsageError(f"--modelprint-alpha must lie in (0, 1), not {value}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    offline = bool(config.getoption("modelprint_offline") or config.getini("modelprint_offline"))
    settings = Settings(
        json_path=_path(config, "modelprint_json", DEFAULT_JSON) or Path(DEFAULT_JSON),
        html_path=_path(config, "modelprint_html", DEFAULT_HTML) or Path(DEFAULT_HTML),
        alpha=_alpha(config),
        offline=offline,
        cache_dir=_path(config, "modelprint_cache_dir", None),
    )
    state = PluginState(settings=settings, engine=Engine(offline=offline or None),
                        is_worker=hasattr(config, "workerinput"))
    # The fingerprint cache and huggingface_hub read the environment; set it for this
    # session only (restored in pytest_unconfigure; xdist workers inherit it).
    env: dict[str, str] = {}
    if settings.cache_dir is not None:
        env["MODELPRINT_CACHE_DIR"] = str(settings.cache_dir)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    for key, value in env.items():
        state.saved_env[key] = os.environ.get(key)
        os.environ[key] = value
    config.stash[STATE_KEY] = state


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    for key, value in state.saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    del config.stash[STATE_KEY]


def get_state(config: pytest.Config) -> PluginState:
    return config.stash[STATE_KEY]
