"""Fingerprints cached by content, so a pytest session (or a CI job) reads each model once.

The key is a sha256 over the fingerprint format, :data:`SALT`, the sketch version, the
model's config, the sha256 of every weight file and of every repository side file (licence,
readme...). It names *content*, not paths: the same weights under another path, or a hub
snapshot and its local copy, share one entry; the entry's ``model`` block (reference, kind,
revision) is rebound to the caller's source on every hit.

Weight-file digests come from the memo of :mod:`.hashing` when the files are unchanged. On a
first run they are not known yet, so the build hashes the files concurrently with the
statistics (one pass over the data instead of two) and the result is stored under the key
afterwards; a file whose memo entry is lost (copied, touched) is therefore re-fingerprinted
once rather than read twice.

Several processes (pytest-xdist workers, parallel CI jobs) may want the same entry at once:
the builder holds a :class:`filelock.FileLock` per key so only one computes it, and entries are
written to a temporary file and atomically renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from modelprint._atomic import atomic_write_bytes, atomic_write_text
from modelprint.cachedir import cache_dir
from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint.build import build_fingerprint, reference_kind, relative_name
from modelprint.fingerprint.hashing import file_sha256, memo_lookup
from modelprint.fingerprint.model import FORMAT, Fingerprint, read_capped
from modelprint.fingerprint.packed import pack, sketches_json, unpack
from modelprint.fingerprint.sketches import SKETCH_VERSION
from modelprint.sources.base import ModelSource

if TYPE_CHECKING:
    from filelock import BaseFileLock

#: Bump when the builder's output changes meaning without a FORMAT change.
SALT = "builder-1"


def fingerprint_dir() -> Path:
    d = cache_dir() / "fingerprints"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_key(source: ModelSource, file_sha: dict[str, str]) -> str:
    """Content key of ``source`` given its weight files' digests by relative name."""
    h = hashlib.sha256()
    h.update(f"{FORMAT}\0{SALT}\0sketch-{SKETCH_VERSION}\0".encode())
    h.update(json.dumps(source.config(), sort_keys=True, default=str).encode())
    for name in sorted(file_sha):
        h.update(f"\0w:{name}:{file_sha[name]}".encode())
    for path in sorted(source.repo_files(), key=lambda p: relative_name(p, source.root)):
        try:
            digest = file_sha256(path)
        except OSError:
            continue
        h.update(f"\0r:{relative_name(path, source.root)}:{digest}".encode())
    return h.hexdigest()


def _entry(key: str) -> Path:
    """The entry: ``fingerprint/packed.py``'s file form, not a ``*.fp.json`` (faster to read
    back; ``modelprint fingerprint -o`` writes the exchange form)."""
    return fingerprint_dir() / f"{key}.fp.cache"


def _stamp(key: str) -> Path:
    return fingerprint_dir() / f"{key}.fp.cache.checked"


def _digest(raw: bytes) -> str:
    return blake3.blake3(raw).hexdigest()


def _read(key: str) -> Fingerprint | None:
    """The entry, or None. An entry whose bytes are exactly those this cache wrote and
    checked (the BLAKE3 of them in ``<key>.fp.cache.checked``) is unpacked without the schema
    pass (~0.05 s of a warm run per model: the nesting scan and every field's check); any
    other bytes -- damaged, or written by someone else -- are turned back into the
    ``*.fp.json`` text and get the full validation a fingerprint file gets."""
    path = _entry(key)
    if not path.exists():
        return None
    try:
        raw = read_capped(path)
        try:
            trusted = _stamp(key).read_text(encoding="utf-8") == _digest(raw)
        except OSError:
            trusted = False
        return entry_fingerprint(raw, path, trusted=trusted)
    except FingerprintFormatError:
        return None  # damaged or from another version: rebuild and overwrite


def entry_fingerprint(raw: bytes, path: str | Path, *, trusted: bool = False) -> Fingerprint:
    """The fingerprint a cache entry's bytes hold: unpacked as they are when ``trusted``,
    otherwise turned back into the ``*.fp.json`` text and validated like a fingerprint file.
    Raises :class:`FingerprintFormatError`."""
    data = unpack(raw, path)
    if trusted:
        return Fingerprint.from_json(data, where=str(path), validated=True)
    data["sketches"] = sketches_json(data.get("sketches"))
    return Fingerprint.from_bytes(json.dumps(data).encode("utf-8"), path)


def _save(fp: Fingerprint, key: str) -> None:
    """Write the entry and, once the JSON it packs passed the schema, stamp its bytes as
    checked. The JSON is the parse of the ``*.fp.json`` text in memory (what a fingerprint
    file of ``fp`` would say), not read back from the file: the stamp is the BLAKE3 of the
    bytes written, so a file changed in between simply fails the stamp and is validated in
    full by its reader (duplicate keys and nesting cannot come out of ``json.dumps`` of the
    builder's dicts; the schema is what is checked)."""
    path = _entry(key)
    data = json.loads(fp.to_text())
    raw = pack(data)
    atomic_write_bytes(path, raw)
    try:
        Fingerprint.from_json(data, where=str(path))
        atomic_write_text(_stamp(key), _digest(raw))
    except (FingerprintFormatError, OSError):
        return  # unstamped: readers validate it in full


def _lock(path: Path) -> BaseFileLock:
    """A lock file, imported only where something is built: a warm run reads entries without
    locking, and ``filelock`` with its ``logging`` import is ~20 ms of such a run."""
    from filelock import FileLock

    return FileLock(str(path))


def _rebind(fp: Fingerprint, source: ModelSource) -> Fingerprint:
    """A cached entry with the caller's reference, kind and revision."""
    fp.model = replace(fp.model, reference=source.reference, kind=reference_kind(source.reference),
                       revision=source.revision)
    return fp


def fingerprint_source(source: ModelSource, *, use_cache: bool = True,
                       progress: bool | None = None) -> Fingerprint:
    """The fingerprint of an open source, from the cache when its content was seen before."""
    files = list(source.weight_files())
    if not use_cache:
        return build_fingerprint(source, progress=progress, file_hashes=_memo(files))
    known = _memo(files)
    if len(known) == len(files):
        hit = _hit(source, known)
        if hit is not None:
            return hit
    # First sight of these files: one process hashes them while fingerprinting; others
    # wanting the same paths wait, then find the memo filled and take the cached entry. A
    # complete memo without an entry is waited for too: the builder writes the files'
    # digests early in its build and holds this lock until the entry is saved, so a second
    # process (the prefetch child's parent, an xdist worker) that did not wait here built the
    # same fingerprint again beside it: in 4 of 5 cold compares of two SmolLM2-size models
    # (benchmarks/peers, re-initialised pair: 3.69-4.80 s, median 4.48, before; 3.74-4.22 s,
    # median 3.95, after).
    where = hashlib.sha256("\0".join(sorted(str(f.resolve()) for f in files)).encode())
    with _lock(fingerprint_dir() / f"paths-{where.hexdigest()[:32]}.lock"):
        known = _memo(files)
        if len(known) == len(files):
            return _cached(source, known, progress)
        fp = build_fingerprint(source, progress=progress, file_hashes=known)
        key = cache_key(source, fp.model.files)
        with _lock(Path(str(_entry(key)) + ".lock")):
            if _read(key) is None:
                _save(fp, key)
        return fp


def _memo(files: list[Path]) -> dict[Path, str]:
    memo = {f: memo_lookup(f) for f in files}
    return {f: d for f, d in memo.items() if d is not None}


def _known_key(source: ModelSource, known: dict[Path, str]) -> str:
    return cache_key(source, {relative_name(f, source.root): d for f, d in known.items()})


def _hit(source: ModelSource, known: dict[Path, str]) -> Fingerprint | None:
    """The cached entry for files whose digests are all known, without locking, or None."""
    hit = _read(_known_key(source, known))
    return None if hit is None else _rebind(hit, source)


def _cached(source: ModelSource, known: dict[Path, str], progress: bool | None) -> Fingerprint:
    key = _known_key(source, known)
    hit = _read(key)
    if hit is not None:
        return _rebind(hit, source)
    with _lock(Path(str(_entry(key)) + ".lock")):
        hit = _read(key)  # another process may have built it while we waited
        if hit is not None:
            return _rebind(hit, source)
        fp = build_fingerprint(source, progress=progress, file_hashes=known)
        _save(fp, key)
        return fp
