"""The audit file schema: turn located YAML into an :class:`AuditSpec`, or say what is wrong
and on which line.

The schema is strict on purpose. An audit gates a release: a misspelt ``thresold:`` that was
silently ignored would make the gate pass on the default threshold, so every unknown key,
wrong type, missing model file, unknown check or unknown check option is an error naming
``file:line``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelprint.errors import AuditSpecError, InputError
from modelprint.spec.yamlnodes import Located, load_located

EXPECT_VALUES = ("independent", "derived")
TOP_KEYS = ("candidate", "references", "library", "expect", "checks", "alpha")
REFERENCE_KEYS = ("model", "name")
#: Display names become part of pytest node ids: keep them to characters -k and shells like.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+\-@]+$")


@dataclass(frozen=True)
class ModelSpec:
    """A MODEL reference as written, with the directory it is relative to."""

    reference: str
    base_dir: Path
    line: int
    name: str


@dataclass(frozen=True)
class AuditSpec:
    """One ``*.audit.yaml`` file, validated."""

    path: Path
    candidate: ModelSpec
    references: tuple[ModelSpec, ...]
    expect: str = "independent"
    #: Selected checks -> the user's options (not merged with defaults); None = every check.
    checks: dict[str, dict[str, Any]] | None = None
    alpha: float | None = None
    #: Line of each selected check's entry, for messages.
    check_lines: dict[str, int] = field(default_factory=dict)
    #: ``library: PATH``: a reference library the candidate is screened against.
    library: Path | None = None
    library_line: int = 0


def load_audit(path: str | Path, registry: Mapping[str, Any] | None = None) -> AuditSpec:
    """Load and validate one audit file.

    ``registry`` maps check names to check objects (with ``default_options``); it defaults
    to :func:`modelprint.checks.all_checks`.
    """
    path = Path(path)
    if registry is None:
        from modelprint.checks import all_checks

        registry = all_checks()
    root = load_located(path)
    if not isinstance(root.value, dict):
        raise AuditSpecError(root.where(path),
                             f"an audit file is a mapping with keys {', '.join(TOP_KEYS)}")
    top: dict[str, Located] = root.value
    _reject_unknown(path, root, TOP_KEYS, "audit file")
    base_dir = path.resolve().parent

    if "candidate" not in top:
        raise AuditSpecError(f"{path}:{root.line}", "missing required key 'candidate'")
    candidate = _model(path, top["candidate"], base_dir, "candidate")

    library = _library(path, top["library"], base_dir) if "library" in top else None
    if "references" not in top and library is None:
        raise AuditSpecError(f"{path}:{root.line}",
                             "missing required key 'references' (or 'library')")
    refs_node = top.get("references") or Located([], root.line)
    if not isinstance(refs_node.value, list) or not (refs_node.value or library is not None):
        raise AuditSpecError(refs_node.where(path),
                             "'references' must be a non-empty list of {model:, name:} entries")
    references: list[ModelSpec] = []
    seen: dict[str, int] = {}
    for item in refs_node.value:
        ref = _reference(path, item, base_dir)
        if ref.name in seen:
            raise AuditSpecError(
                f"{path}:{ref.line}",
                f"reference name {ref.name!r} already used on line {seen[ref.name]}; "
                "give each reference a distinct 'name'",
            )
        seen[ref.name] = ref.line
        references.append(ref)

    expect = "independent"
    if "expect" in top:
        node = top["expect"]
        if node.value not in EXPECT_VALUES:
            raise AuditSpecError(node.where(path),
                                 f"'expect' must be one of {', '.join(EXPECT_VALUES)}, "
                                 f"not {_show(node.value)}")
        expect = node.value

    alpha = None
    if "alpha" in top:
        alpha = _alpha(path, top["alpha"])

    checks: dict[str, dict[str, Any]] | None = None
    check_lines: dict[str, int] = {}
    if "checks" in top:
        checks, check_lines = _checks(path, top["checks"], registry)

    return AuditSpec(path=path, candidate=candidate, references=tuple(references),
                     expect=expect, checks=checks, alpha=alpha, check_lines=check_lines,
                     library=library, library_line=top["library"].line if library else 0)


# -- pieces ------------------------------------------------------------------------------

def _reject_unknown(path: Path, node: Located, allowed: tuple[str, ...], what: str) -> None:
    for key in node.value:
        if key not in allowed:
            hint = _did_you_mean(key, allowed)
            raise AuditSpecError(
                f"{path}:{node.key_line(key)}",
                f"unknown key {key!r} in the {what} (allowed: {', '.join(allowed)}){hint}",
            )


def _did_you_mean(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _text(path: Path, node: Located, what: str) -> str:
    if not isinstance(node.value, str) or not node.value.strip():
        raise AuditSpecError(node.where(path), f"{what} must be text, not {_show(node.value)}")
    return node.value.strip()


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    if isinstance(value, int) and abs(value) > 10**40:   # repr of 5,000 digits would raise
        return "a huge integer"
    return f"{type(value).__name__} {_clip(repr(value))}"


def _clip(text: str, limit: int = 200) -> str:
    """Hostile files hold megabyte strings; an error line quotes only the start."""
    return text if len(text) <= limit else text[:limit] + "..."


def _model(path: Path, node: Located, base_dir: Path, what: str,
           name: str | None = None) -> ModelSpec:
    reference = _text(path, node, f"'{what}' (a MODEL reference)")
    _validate_reference(path, node.line, reference, base_dir)
    display = name if name is not None else default_name(reference)
    return ModelSpec(reference=reference, base_dir=base_dir, line=node.line, name=display)


def _reference(path: Path, item: Located, base_dir: Path) -> ModelSpec:
    if isinstance(item.value, str):  # shorthand: "- path/to/model"
        return _model(path, item, base_dir, "reference")
    if not isinstance(item.value, dict):
        raise AuditSpecError(item.where(path),
                             f"a reference is a mapping with 'model' and optional 'name', "
                             f"not {_show(item.value)}")
    _reject_unknown(path, item, REFERENCE_KEYS, "reference")
    fields: dict[str, Located] = item.value
    if "model" not in fields:
        raise AuditSpecError(item.where(path), "reference without 'model'")
    name = None
    if "name" in fields:
        name_node = fields["name"]
        if isinstance(name_node.value, (int, float)) and not isinstance(name_node.value, bool):
            name_node = Located(str(name_node.value), name_node.line)
        name = _text(path, name_node, "'name'")
        if not _NAME_RE.match(name):
            raise AuditSpecError(name_node.where(path),
                                 f"name {name!r} may only use letters, digits and _ . + - @ "
                                 "(it becomes part of the pytest test id)")
    return _model(path, fields["model"], base_dir, "model", name)


def default_name(reference: str) -> str:
    """A test-id-friendly display name for a reference without ``name:``."""
    text = reference
    if text.startswith("hf:"):
        text = text[3:].split("@", 1)[0].rsplit("/", 1)[-1]
    else:
        text = text.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
        for suffix in (".fp.json", ".safetensors", ".gguf"):
            if text.lower().endswith(suffix):
                text = text[: -len(suffix)]
                break
    text = re.sub(r"[^A-Za-z0-9_.+\-@]+", "-", text).strip("-")
    return text or "reference"


def _validate_reference(path: Path, line: int, reference: str, base_dir: Path) -> None:
    """Cheap checks at load time: the file exists and the reference parses. Weights are read
    later, by the items that need them."""
    where = f"{path}:{line}"
    from modelprint.refs import exists, expand, parse_reference

    try:
        if not reference.startswith("hf:"):
            target = expand(reference, base_dir)
            if not exists(target):
                raise AuditSpecError(where, f"model {_clip(reference)!r} not found (looked at "
                                            f"{_clip(str(target))})")
        parse_reference(reference, base_dir=base_dir)
    except InputError as exc:
        raise AuditSpecError(where, f"model {_clip(reference)!r}: {exc}") from None


def _library(path: Path, node: Located, base_dir: Path) -> Path:
    """``library: PATH``: a folder made by ``modelprint library``, relative to this file."""
    from modelprint.refs import exists, expand

    text = _text(path, node, "'library' (a library folder)")
    try:
        folder = expand(text, base_dir)
        found = exists(folder / "library.sqlite") and (folder / "library.sqlite").is_file()
    except InputError as exc:
        raise AuditSpecError(node.where(path), f"library: {exc}") from None
    if not found:
        raise AuditSpecError(node.where(path), f"library {text!r} is not a modelprint library "
                             f"(no library.sqlite in {folder}; build one with `modelprint "
                             "library build`)")
    return folder


def _alpha(path: Path, node: Located) -> float:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuditSpecError(node.where(path), f"'alpha' must be a number, not {_show(value)}")
    value = float(value)
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise AuditSpecError(node.where(path), f"'alpha' must lie in (0, 1), not {value}")
    return value


def _checks(path: Path, node: Located, registry: Mapping[str, Any]
            ) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    names = list(registry)
    selected: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    if isinstance(node.value, list):  # shorthand: checks: [attention_std, identity]
        entries = [(item.value, item, Located({}, item.line)) for item in node.value]
    elif isinstance(node.value, dict):
        entries = [(key, Located(key, node.key_line(key)), value)
                   for key, value in node.value.items()]
    else:
        raise AuditSpecError(node.where(path),
                             f"'checks' must be a mapping of check names to options, "
                             f"not {_show(node.value)}")
    if not entries:
        raise AuditSpecError(node.where(path),
                             "'checks' is empty; leave it out to run every check")
    for name, name_node, options_node in entries:
        if not isinstance(name, str) or name not in registry:
            raise AuditSpecError(
                name_node.where(path),
                f"unknown check {name!r} (known: {', '.join(names)})"
                + (_did_you_mean(name, names) if isinstance(name, str) else ""),
            )
        if name in selected:
            raise AuditSpecError(name_node.where(path), f"check {name!r} listed twice")
        defaults = dict(getattr(registry[name], "default_options", {}) or {})
        selected[name] = _options(path, name, options_node, defaults)
        for key in getattr(registry[name], "path_options", ()):
            if key in selected[name]:
                selected[name][key] = _resolve_refs(selected[name][key], path.resolve().parent)
        lines[name] = name_node.line
    ordered = {n: selected[n] for n in names if n in selected}
    return ordered, lines


def _resolve_refs(value: Any, base_dir: Path) -> Any:
    """Model references inside a check option (text, list or mapping values), relative
    paths made relative to the audit file like ``candidate`` (hub references kept)."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, base_dir) for v in value]
    if isinstance(value, str) and value and not value.startswith("hf:") and \
            not Path(value).expanduser().is_absolute():
        return str(base_dir / value)
    return value


def _options(path: Path, check: str, node: Located, defaults: dict[str, Any]) -> dict[str, Any]:
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        raise AuditSpecError(node.where(path),
                             f"options of check {check!r} must be a mapping, "
                             f"not {_show(node.value)}")
    out: dict[str, Any] = {}
    for key, value in node.value.items():
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise AuditSpecError(
                f"{path}:{node.key_line(key)}",
                f"unknown option {key!r} for check {check!r} (options: {known})"
                + _did_you_mean(key, list(defaults)),
            )
        out[key] = _typed(path, f"{check}.{key}", value, defaults[key])
    return out


def _typed(path: Path, what: str, node: Located, default: Any) -> Any:
    """Check ``node`` against the type of the option's default value."""
    value = _plain(node)
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        expected = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number"
        if ok:
            value = float(value)
            if math.isnan(value):
                ok = False
    elif isinstance(default, str):
        ok = isinstance(value, str)
        expected = "text"
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, list)
        expected = "a list"
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
        expected = "a mapping"
    else:
        ok, expected = True, ""
    if not ok:
        raise AuditSpecError(node.where(path), f"option {what} must be {expected}, "
                                               f"not {_show(value)}")
    return value


def _plain(node: Located) -> Any:
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value
