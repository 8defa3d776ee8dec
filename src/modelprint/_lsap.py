"""``scipy.optimize.linear_sum_assignment`` without importing ``scipy.optimize``.

Why: ``import scipy.optimize`` loads linprog, minimize, the sparse and linalg stacks -- about
1 s on the 2-core machines here (several seconds under load), paid by every audit process,
warm or cold -- while modelprint needs one function of it, which lives in the compiled
extension ``scipy/optimize/_lsap``. That extension is loaded here from its file (it needs only
numpy); if the file is not where this scipy keeps it, the ordinary import is used. Either way
it is the same C function, so results are identical.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FN: Callable[..., Any] | None = None


def _load() -> Callable[..., Any]:
    try:
        # located, not imported: scipy's own __init__ is ~10 ms that the extension does not need
        found = importlib.util.find_spec("scipy")
        if found is None or not found.submodule_search_locations:
            raise ImportError("scipy")
        folder = Path(next(iter(found.submodule_search_locations))) / "optimize"
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / f"_lsap{suffix}"
            if path.is_file():
                spec = importlib.util.spec_from_file_location("_lsap", path)
                if spec is None or spec.loader is None:
                    break
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                fn: Callable[..., Any] = mod.linear_sum_assignment
                return fn
    except (ImportError, OSError, AttributeError):
        pass
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


#: The extension is loaded outside the import system (whose module locks would serialise two
#: first loads), and checks run on several threads: the first load is under a lock, so the
#: extension is executed once.
_LOAD_LOCK = threading.Lock()


def linear_sum_assignment(cost: Any, maximize: bool = False) -> Any:
    """Exactly ``scipy.optimize.linear_sum_assignment(cost, maximize)``."""
    global _FN
    if _FN is None:
        with _LOAD_LOCK:
            if _FN is None:
                _FN = _load()
    return _FN(cost, maximize=maximize)
