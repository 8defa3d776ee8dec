"""Former home of the engine, kept so ``from modelprint.audit import Engine, Target`` goes on
working: everything now lives in :mod:`modelprint.engine` (one module per concern)."""

from __future__ import annotations

from modelprint.engine import *  # noqa: F403
from modelprint.engine import __all__  # noqa: F401
