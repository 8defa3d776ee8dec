"""sha256 of weight files and tensors, with a memo so a re-run does not re-hash.

Hashing a multi-GB file costs about as much as fingerprinting it (sha256 runs at ~1.8 GB/s
with SHA-NI here), and the file hashes are the fingerprint cache's key. So a file's digest is
remembered under ``(resolved path, size, mtime_ns, inode)``: any rewrite, copy or ``touch``
changes that signature and forces a fresh hash, while an untouched file is never read twice.
Each memo entry is its own small file written atomically (:mod:`modelprint.memo`, kind
``file-sha256``), so concurrent processes need no lock (the worst case is two of them hashing
the same file once each).

``hashlib`` releases the GIL on large buffers, which is what lets :mod:`.build` hash on a
second core while the first one counts bit patterns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from modelprint import memo
from modelprint.memo import file_signature

#: Read size for whole-file hashing.
FILE_CHUNK = 16 * 1024 * 1024


def sha256_chunks(chunks: Iterable[memoryview | bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """Digest of a whole file, read in 16 MB pieces into one reused buffer."""
    h = hashlib.sha256()
    buf = bytearray(FILE_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def memo_lookup(path: Path) -> str | None:
    """The remembered sha256 of ``path`` if the file is unchanged since it was hashed."""
    try:
        key = file_signature(path)[1]
    except OSError:
        return None
    data = memo.load_json("file-sha256", key)
    digest = data.get("sha256") if isinstance(data, dict) else None
    return digest if isinstance(digest, str) and len(digest) == 64 else None


def memo_store(path: Path, digest: str) -> None:
    try:
        real, key = file_signature(path)
    except OSError:
        return  # the memo is an optimisation; a vanished file must not fail the run
    memo.store_json("file-sha256", key, {"path": real, "sha256": digest})


def file_sha256(path: Path, use_memo: bool = True) -> str:
    """sha256 of a file, from the memo when the file is unchanged."""
    if use_memo:
        known = memo_lookup(path)
        if known is not None:
            return known
    digest = sha256_file(path)
    if use_memo:
        memo_store(path, digest)
    return digest
