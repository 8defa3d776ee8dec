"""Careful reading of the small text files around the weights (config, tokenizer, licenses).

Everything in a downloaded repository is untrusted: JSON may repeat keys (which silently
wins in ``json.loads``), files may be huge, and symlinks may point anywhere on the disk.
These helpers cap sizes, reject duplicate keys and keep symlinks inside the repository
(the hub cache's ``snapshots/<commit>/x -> ../../blobs/<sha>`` links stay inside the
``models--org--name`` folder, which is passed as the trusted root).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from modelprint._jsonlimits import check_depth
from modelprint.errors import ModelFileError
from modelprint.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_VOCAB
from modelprint.memo import file_signature, load_strings, store_strings
from modelprint.refs import is_pickle_name

#: Largest non-weight file listed by ``repo_files`` (licenses and cards are small).
MAX_REPO_FILE_BYTES = 8 * 1024 * 1024

REPO_PATTERNS = (
    "LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "README*", "*.md", "*.py", "*.json",
    "*.txt", "*.yaml", "*.yml",
)
DOC_PATTERNS = ("LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "README*", "*.md")
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".npz", ".h5", ".msgpack", ".onnx", ".ot")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object, or ValueError naming a repeated key. Built in C and compared by length
    (a key seen twice makes the dict shorter than its pairs); the Python loop that names the
    key runs only then -- it was ~0.02 s of every 49k-token ``tokenizer.json``."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


def loads_strict(data: bytes | str, max_depth: int = MAX_JSON_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that rejects duplicate keys and nesting deeper than ``max_depth`` (checked
    before parsing, see :mod:`modelprint._jsonlimits`); raises ValueError."""
    check_depth(data, max_depth)
    return json.loads(data, object_pairs_hook=_no_duplicates, **kwargs)


def load_json_file(path: Path, what: str = "JSON file") -> dict[str, Any]:
    """Read a JSON object from ``path`` with a size cap and duplicate-key rejection."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelFileError(path, f"cannot read {what}: {exc.strerror or exc}") from None
    if size > MAX_JSON_BYTES:
        raise ModelFileError(path, f"{what} is {size} bytes, over the {MAX_JSON_BYTES} byte limit")
    try:
        obj = loads_strict(path.read_bytes())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(path, f"{what} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise ModelFileError(path, f"cannot read {what}: {exc.strerror or exc}") from None
    if not isinstance(obj, dict):
        raise ModelFileError(path, f"{what} must hold a JSON object, not {type(obj).__name__}")
    return obj


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` (symlinks followed) lies inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def list_repo_files(
    root: Path, trusted_root: Path | None = None, patterns: tuple[str, ...] = REPO_PATTERNS,
    max_depth: int = 2,
) -> list[Path]:
    """Non-weight files of a repository directory matching ``patterns``, sorted.

    Skips hidden entries, weight and pickle files, files over :data:`MAX_REPO_FILE_BYTES`
    and symlinks that resolve outside ``trusted_root`` (default: ``root``).
    """
    trusted = trusted_root or root
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_symlink() and not inside(entry, trusted):
                continue
            if entry.is_dir():
                if depth < max_depth:
                    walk(entry, depth + 1)
                continue
            lower = name.lower()
            if lower.endswith(WEIGHT_SUFFIXES) or is_pickle_name(name):
                continue
            if not any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(lower, p.lower())
                       for p in patterns):
                continue
            try:
                if not entry.is_file() or entry.stat().st_size > MAX_REPO_FILE_BYTES:
                    continue
            except OSError:
                continue
            found.append(entry)

    walk(root, 1)
    return found


def read_vocabulary(folder: Path, trusted_root: Path | None = None) -> list[str] | None:
    """Token strings by id from ``tokenizer.json`` (BPE/WordPiece ``model.vocab`` dict or
    Unigram ``[[piece, score], ...]`` list, plus ``added_tokens``) or ``vocab.txt``."""
    trusted = trusted_root or folder
    tok = folder / "tokenizer.json"
    if tok.is_file() and inside(tok, trusted):
        key = file_signature(tok)[1]
        vocab = load_strings("vocabulary", key, MAX_VOCAB)
        if vocab is None:
            vocab = _tokenizer_vocabulary(tok) or []
            store_strings("vocabulary", key, vocab)
        if vocab:
            return vocab
    txt = folder / "vocab.txt"
    if txt.is_file() and inside(txt, trusted):
        if txt.stat().st_size > MAX_JSON_BYTES:
            raise ModelFileError(txt, "vocab.txt is too large")
        return txt.read_text(encoding="utf-8", errors="replace").splitlines()
    return None


def _tokenizer_vocabulary(tok: Path) -> list[str] | None:
    """Token strings by id of one ``tokenizer.json`` (remembered per file by
    :func:`read_vocabulary`, :mod:`modelprint.memo`: parsing it was ~0.1 s of every warm run)."""
    data = load_json_file(tok, "tokenizer.json")
    by_id: dict[int, str] = {}
    model = data.get("model")
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):
        for token, idx in vocab.items():
            if isinstance(idx, int) and not isinstance(idx, bool):
                by_id[idx] = str(token)
    elif isinstance(vocab, list):
        for idx, item in enumerate(vocab):
            if isinstance(item, list) and item:
                by_id[idx] = str(item[0])
            elif isinstance(item, str):
                by_id[idx] = item
    added_tokens = data.get("added_tokens")
    for added in added_tokens if isinstance(added_tokens, list) else []:
        if isinstance(added, dict) and isinstance(added.get("id"), int):
            by_id.setdefault(added["id"], str(added.get("content", "")))
    if by_id:
        top = max(by_id)
        if min(by_id) < 0 or top >= MAX_VOCAB:
            raise ModelFileError(tok, f"token id {top if top >= MAX_VOCAB else min(by_id)} "
                                      "out of range")
        out = [""] * (top + 1)
        for idx, token in by_id.items():
            out[idx] = token
        return out
    return None
