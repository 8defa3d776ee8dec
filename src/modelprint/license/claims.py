"""Claims a repository makes about itself: model-card front matter, config.json, GGUF metadata.

These are statements, not proofs: ``base_model: Qwen/Qwen2-7B`` in a card is the publisher
saying where the weights came from; ``general.organization`` in a GGUF file says who claims to
have made it. They are parsed defensively (YAML with size caps and ``safe_load`` only, JSON with
size caps, values coerced to short strings) because the files are untrusted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from modelprint._jsonlimits import check_depth
from modelprint.license.vendors import canonical_vendor, license_id_info, vendors_in
from modelprint.spec.yamlnodes import load_plain

#: Front matter larger than this is not parsed (a real card's header is a few KB).
MAX_FRONT_MATTER = 64 * 1024
#: Longest value kept from a claim (excerpts are short; the report escapes them).
MAX_VALUE = 200
_FINETUNED = re.compile(r"fine-?tuned\s+(?:version\s+)?(?:of|from)\s+\[?`?"
                        r"(?P<repo>[\w.-]+/[\w.-]+)", re.IGNORECASE)
_REPO = re.compile(r"(?:huggingface\.co/|^)(?P<org>[\w.-]+)/(?P<name>[\w.-]+)")


def short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)[:MAX_VALUE]
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "…"


def repo_vendor(value: str) -> str | None:
    """Vendor of a repository id or URL (``Qwen/Qwen2-7B``, ``https://huggingface.co/google/...``)
    from its organisation part, else from anything in the text."""
    m = _REPO.search(value.strip())
    if m:
        found = vendors_in(m.group("org"))
        if found:
            return found[0]
    found = vendors_in(value)
    return found[0] if found else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [short(v) for v in value if isinstance(v, (str, int, float))][:20]
    if isinstance(value, (str, int, float)):
        return [short(value)]
    return []


def front_matter(lines: list[tuple[int, str]]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The YAML front matter of a model card (between leading ``---`` lines) and the line of
    each top-level key; None when there is none or it is not a mapping."""
    if not lines or lines[0][1].strip() != "---":
        return None
    body: list[str] = []
    key_lines: dict[str, int] = {}
    size = 0
    for num, text in lines[1:]:
        if text.strip() in ("---", "..."):
            break
        size += len(text) + 1
        if size > MAX_FRONT_MATTER:
            return None
        m = re.match(r"([A-Za-z_][\w-]*)\s*:", text)
        if m and m.group(1) not in key_lines:
            key_lines[m.group(1)] = num
        body.append(text)
    else:
        return None
    try:
        data = load_plain("\n".join(body))
    except (yaml.YAMLError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return data, key_lines


def card_findings(lines: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """license / base_model claims of a model card, plus "fine-tuned version of X" sentences."""
    out: list[dict[str, Any]] = []
    fm = front_matter(lines)
    if fm is not None:
        data, key_lines = fm
        names = _as_list(data.get("license_name"))
        link = _as_list(data.get("license_link"))
        for lid in _as_list(data.get("license")):
            key = names[0] if lid.lower() == "other" and names else lid
            vendor, title = license_id_info(key)
            if vendor is None and link:
                vendor = repo_vendor(link[0])
            out.append(dict(kind="card_license", vendor=vendor, license=key, title=title,
                            line=key_lines.get("license"), excerpt=f"license: {lid}"
                            + (f" ({key})" if key != lid else ""), confidence=0.9))
        for base in _as_list(data.get("base_model")):
            out.append(dict(kind="base_model", vendor=repo_vendor(base), license=None,
                            title=None, value=base, line=key_lines.get("base_model"),
                            excerpt=f"base_model: {base}", confidence=0.9))
    for num, text in lines:
        m = _FINETUNED.search(text)
        if m:
            repo = m.group("repo")
            out.append(dict(kind="base_model", vendor=repo_vendor(repo), license=None,
                            title=None, value=repo, line=num, excerpt=short(text.strip()),
                            confidence=0.7))
    return out


#: config.json keys that name where a model (or adapter) came from.
_CONFIG_ORIGIN = ("_name_or_path", "base_model_name_or_path", "base_model")


def config_findings(text: str) -> list[dict[str, Any]]:
    """Origin claims in a config.json / adapter_config.json; architecture names as context."""
    try:
        check_depth(text)
        data = json.loads(text)
    except (ValueError, RecursionError):
        return []
    if not isinstance(data, dict):
        return []
    out: list[dict[str, Any]] = []
    for key in _CONFIG_ORIGIN:
        for value in _as_list(data.get(key)):
            if value and not value.startswith(("/", ".", "~")):
                out.append(dict(kind="base_model", vendor=repo_vendor(value), license=None,
                                title=None, value=value, key=key, line=_line_of(text, key),
                                excerpt=f'"{key}": "{value}"', confidence=0.6))
    auto = data.get("auto_map")
    if isinstance(auto, dict):
        for key, value in list(auto.items())[:20]:
            for v in _as_list(value):
                vendor = repo_vendor(v) if vendors_in(v) else None
                if vendor:
                    out.append(dict(kind="code_origin", vendor=vendor, license=None, title=None,
                                    value=v, key=f"auto_map.{short(key)}",
                                    line=_line_of(text, "auto_map"),
                                    excerpt=f'"{short(key)}": "{v}"', confidence=0.5))
    for arch in _as_list(data.get("architectures")):
        found = vendors_in(arch)
        out.append(dict(kind="architecture", vendor=found[0] if found else None, license=None,
                        title=None, value=arch, key="architectures",
                        line=_line_of(text, "architectures"), excerpt=f'"architectures": "{arch}"',
                        confidence=0.1))
    return out


def _line_of(text: str, key: str) -> int | None:
    idx = text.find(f'"{key}"')
    return None if idx < 0 else text.count("\n", 0, idx) + 1


def metadata_findings(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """GGUF ``general.*`` claims (license, organisation/author, base models, source URL)."""
    out: list[dict[str, Any]] = []
    if not isinstance(metadata, dict):
        return out

    def get(key: str) -> list[str]:
        return _as_list(metadata.get(key))

    def add(kind: str, key: str, value: str, vendor: str | None, conf: float,
            lic: str | None = None, title: str | None = None) -> None:
        out.append(dict(kind=kind, vendor=vendor, license=lic, title=title, value=value,
                        key=key, file=None, line=None, excerpt=f"{key} = {value}",
                        confidence=conf))

    for key in ("general.license", "general.license.name"):
        for value in get(key):
            vendor, title = license_id_info(value)
            add("metadata_license", key, value, vendor, 0.9, value, title)
    for value in get("general.license.link"):
        add("metadata_license", "general.license.link", value, repo_vendor(value), 0.6, value)
    for key in ("general.organization", "general.author"):
        for value in get(key):
            add("organization", key, value, canonical_vendor(value), 0.9)
    count = metadata.get("general.base_model.count")
    n = count if isinstance(count, int) and 0 <= count <= 16 else 0
    for i in range(n):
        parts = {f: get(f"general.base_model.{i}.{f}")
                 for f in ("name", "organization", "repo_url")}
        desc = " / ".join(v[0] for v in parts.values() if v)
        if desc:
            org = parts["organization"][0] if parts["organization"] else ""
            vendor = canonical_vendor(org) if org else repo_vendor(desc)
            add("base_model", f"general.base_model.{i}", desc, vendor, 0.9)
    for key in ("general.source.url", "general.source.huggingface.repository",
                "general.source.repo_url"):
        for value in get(key):
            add("source", key, value, repo_vendor(value), 0.6)
    return out
