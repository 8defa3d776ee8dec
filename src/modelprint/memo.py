"""Small derived values remembered across processes, in the user cache directory.

Why: a warm ``compare`` should not redo per-model work whose inputs did not change. Two such
values were ~0.15 s of a warm compare of a SmolLM2 pair (1.27 -> 1.12 s): the token strings
parsed out of a ``tokenizer.json`` (a 2-3 MB JSON document, parsed with duplicate-key checks)
and their canonical spellings (one decode per token). Each is a list of strings, remembered as
a small JSON file under ``<cache dir>/memo/<kind>/<key>.json``:

* keyed by a *file signature* (resolved path, size, mtime_ns, inode, device -- what the
  weight-file digest memo of :mod:`modelprint.fingerprint.hashing` uses): any rewrite, copy or
  ``touch`` of the file changes the key, so a stale entry is never read;
* or by a *content key* (a sha256 over the input itself) for values derived from data.

The weight files' sha256 (``file-sha256``, :mod:`modelprint.fingerprint.hashing`) and a GGUF
file's parsed header (``gguf-header``, keyed by the file's signature) are remembered the
same way, as JSON objects: walking a 262,144-token vocabulary was ~0.3 s of every process
that opened Gemma 3.

Entries are written atomically and read defensively: anything that is not what its reader
expects (for the string lists: a list of at most ``max_items`` strings) is ignored and
recomputed, never trusted. A cache that cannot be
written (read-only, full) only costs the recomputation. The checks guard against damage and
staleness, not forgery: the cache directory is trusted as the fingerprint cache next to it
is (whoever can write there can replace fingerprints too).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from modelprint._atomic import atomic_write_text
from modelprint.cachedir import cache_dir


def file_signature(path: Path) -> tuple[str, str]:
    """``(resolved path, sha256 of path|size|mtime_ns|inode|device)`` of an existing file."""
    st = path.stat()
    real = str(path.resolve())
    sig = f"{real}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_dev}"
    return real, hashlib.sha256(sig.encode()).hexdigest()


def content_key(items: list[str]) -> str:
    """A sha256 naming a list of strings exactly: the strings joined, and every string's
    length (so no two lists share a key, whatever characters they hold). Two C-level passes:
    a vocabulary has up to a few hundred thousand strings."""
    joined = "".join(items).encode("utf-8", "surrogatepass")
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    h = hashlib.sha256(f"strings/{len(items)}\0".encode())
    h.update(lengths.tobytes())
    h.update(joined)
    return h.hexdigest()


def _path(kind: str, key: str) -> Path:
    return cache_dir() / "memo" / kind / f"{key}.json"


def load_strings(kind: str, key: str, max_items: int) -> list[str] | None:
    """The remembered list, or None (absent, unreadable or not a list of strings)."""
    data = load_json(kind, key)
    if not isinstance(data, list) or len(data) > max_items or \
            not set(map(type, data)) <= {str}:
        return None
    return data


def store_strings(kind: str, key: str, items: list[str]) -> None:
    store_json(kind, key, items)


def load_json(kind: str, key: str) -> Any:
    """The remembered JSON value, or None. The caller validates it (:func:`load_strings`, or
    a structure of its own, e.g. ``sources._ggufparse.header_from_memo``)."""
    try:
        return json.loads(_path(kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def store_json(kind: str, key: str, value: Any) -> None:
    try:
        atomic_write_text(_path(kind, key), json.dumps(value, ensure_ascii=False))
    except (OSError, UnicodeEncodeError, TypeError, ValueError):
        return  # the memo is an optimisation; a read-only cache must not fail the run
