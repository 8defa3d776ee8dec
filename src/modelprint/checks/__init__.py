"""The registry of checks, in the order the report shows them (decisive first).

Each module named here exposes ``CHECK``, an object satisfying :class:`~.base.Check`.
"""

from __future__ import annotations

import importlib
from functools import cache

from modelprint.checks.base import Check

#: name -> module; order is the display order.
_MODULES: dict[str, str] = {
    "identity": "modelprint.checks.identity",
    "weights_cosine": "modelprint.checks.weights_cosine",
    "embedding_alignment": "modelprint.checks.embedding_alignment",
    "attention_cka": "modelprint.checks.attention_cka",
    "mlp_matching": "modelprint.checks.mlp_matching",
    "activation_matching": "modelprint.checks.activation_matching",
    "moe_upcycling": "modelprint.checks.moe_upcycling",
    "attention_std": "modelprint.checks.attention_std",
    "qkv_bias": "modelprint.checks.qkv_bias",
    "layernorm": "modelprint.checks.layernorm",
    "license": "modelprint.checks.license",
    "merge_recipe": "modelprint.checks.merge_recipe",
}


@cache
def all_checks() -> dict[str, Check]:
    """Every registered check by name (imported on first use)."""
    out: dict[str, Check] = {}
    for name, module in _MODULES.items():
        check = importlib.import_module(module).CHECK
        if check.name != name:
            raise RuntimeError(f"{module}.CHECK is named {check.name!r}, registered as {name!r}")
        out[name] = check
    return out


def get_check(name: str) -> Check:
    return all_checks()[name]


def check_names() -> list[str]:
    return list(_MODULES)
