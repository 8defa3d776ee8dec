"""modelprint: audit whether one neural network was derived from another.

The small public API; everything else is private implementation.
"""

from __future__ import annotations

__version__ = "0.1.0"

from modelprint.errors import InputError, ModelprintError

__all__ = ["InputError", "ModelprintError", "__version__"]
