"""Read audit YAML as *nodes*, so every value keeps the line it came from.

``yaml.safe_load`` throws positions away and silently keeps the last of two duplicate keys;
an audit file is a release gate, so a typo must be reported where it is. We compose the node
graph with a SafeLoader variant (never a constructor that could build arbitrary objects) and
convert it into :class:`Located` values ourselves, rejecting duplicate keys on the way.

PyYAML implements YAML 1.1, where ``1e-3`` (no dot) is a *string*; people write thresholds
and alphas that way, so this loader also resolves such scalars as floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelprint.errors import AuditSpecError
from modelprint.limits import MAX_AUDIT_BYTES, MAX_YAML_DEPTH


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` / ``5E+2`` as floats, and refuses what could make
    reading a small file take unbounded time or memory: aliases (``*name``: a "billion
    laughs" file is 1 kB of aliases expanding to 10**9 nodes) and nesting deeper than
    :data:`~modelprint.limits.MAX_YAML_DEPTH` (the composer recurses once per level)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported", mark)
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# add_implicit_resolver appends to lists shared with SafeLoader: copy them first so the
# global SafeLoader is left exactly as it was.
_Loader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class Located:
    """A plain YAML value (str, int, float, bool, None, list, dict) and its 1-based line.

    Mapping values are ``dict[str, Located]`` and sequence items ``list[Located]``, so the
    schema can point at the exact line of any nested value.
    """

    value: Any
    line: int
    #: For mappings: the line of each key (errors about a key point at the key).
    key_lines: dict[str, int] | None = None

    def key_line(self, key: str) -> int:
        return (self.key_lines or {}).get(key, self.line)

    def where(self, path: Path | str) -> str:
        return f"{path}:{self.line}"


def load_located(path: Path) -> Located:
    """Parse one YAML document from ``path`` into :class:`Located` values.

    Raises :class:`AuditSpecError` naming ``file:line`` for unreadable files, files over
    :data:`~modelprint.limits.MAX_AUDIT_BYTES`, syntax errors, aliases, deep nesting,
    duplicate keys, non-string keys and an empty document.
    """
    try:
        size = path.stat().st_size
        if size > MAX_AUDIT_BYTES:
            raise AuditSpecError(f"{path}:1", f"{size} bytes, over the {MAX_AUDIT_BYTES} byte "
                                              "limit of an audit file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AuditSpecError(path, "file not found") from None
    except OSError as exc:
        raise AuditSpecError(path, f"cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AuditSpecError(f"{path}:{line}", f"not UTF-8 text ({exc.reason})") from None
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(filter(None, [exc.context, exc.problem]))
        raise AuditSpecError(f"{path}:{line}", f"not valid YAML: {what}") from None
    except yaml.reader.ReaderError as exc:    # a control character, found before parsing
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise AuditSpecError(f"{path}:{line}", f"not valid YAML: {exc.reason} "
                                               f"(character {exc.character!r})") from None
    except yaml.YAMLError as exc:
        raise AuditSpecError(f"{path}:1", f"not valid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise AuditSpecError(f"{path}:1", "the audit file is empty")
    return _convert(node, loader, path)


def load_plain(text: str) -> Any:
    """One YAML document as plain Python values, with :class:`_Loader`'s limits (no aliases,
    bounded depth); raises ``yaml.YAMLError``. For YAML inside other files (model cards)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _convert(node: yaml.Node, loader: _Loader, path: Path) -> Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise AuditSpecError(f"{path}:{key_node.start_mark.line + 1}",
                                     "YAML merge keys (<<) are not supported in audit files")
            key = _convert(key_node, loader, path)
            if not isinstance(key.value, str):
                raise AuditSpecError(key.where(path), f"keys must be text, not {key.value!r}")
            if key.value in out:
                raise AuditSpecError(
                    key.where(path),
                    f"duplicate key {key.value!r} (first given on line {out[key.value].line})",
                )
            out[key.value] = _convert(value_node, loader, path)
            key_lines[key.value] = key.line
        return Located(out, line, key_lines)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(item, loader, path) for item in node.value], line)
    if isinstance(node, yaml.ScalarNode):
        try:
            value = loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:   # ValueError: a 5,000-digit integer
            raise AuditSpecError(f"{path}:{line}", f"bad value: {exc}") from None
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            raise AuditSpecError(
                f"{path}:{line}",
                f"unsupported value {node.value!r} ({type(value).__name__}); quote it as text",
            )
        return Located(value, line)
    raise AuditSpecError(f"{path}:{line}", f"unsupported YAML node {node.tag}")  # pragma: no cover

