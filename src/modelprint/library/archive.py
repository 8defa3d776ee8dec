"""One file a CI job downloads: ``library export FILE`` / ``library import FILE``.

The archive is a tar (gzip-compressed when FILE ends in ``.gz``/``.tgz``) holding
``modelprint-library.json`` (format, and every entry's index row with its descriptor) and
the ``objects/`` the entries use. The SQLite file itself is not shipped: an importer checks
and re-indexes what it receives instead of trusting a foreign database file.

An archive is hostile input. Import refuses, before writing anything into the library: a
member that is not a regular file (symlinks, hard links, devices), an absolute path or one
with ``..``, any name outside ``objects/xx/<sha256>.npy|.json.z`` and the entry list, an
object whose bytes do not hash to its name, an entry whose objects are missing, sizes over
the caps, and a name that the library already uses for a different model. Objects are
extracted by reading member bytes (never ``extractall``) into a staging folder inside the
library, hashed, then renamed into ``objects/``; the entries go into the index in one
transaction. Arrays are later read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from modelprint.library.core import ModelLibrary, now
from modelprint.library.index import Entry
from modelprint.library.store import LibraryError, references

ARCHIVE_FORMAT = "modelprint.library-archive/1"
INDEX_MEMBER = "modelprint-library.json"
MAX_MEMBER = 4 * 1024 ** 3
MAX_INDEX = 512 * 1024 ** 2
_OBJECT = re.compile(r"^objects/([0-9a-f]{2})/([0-9a-f]{64})(\.npy|\.json\.z)$")


def _gz(path: Path) -> bool:
    return path.name.endswith((".gz", ".tgz"))


def export(library: ModelLibrary, path: Path, names: list[str] | None = None) -> int:
    """Write the archive atomically; returns the number of entries."""
    entries = library.index.entries(descriptors=True)
    if names:
        missing = sorted(set(names) - {e.name for e in entries})
        if missing:
            raise LibraryError(library.root, f"no entry named {missing[0]!r}")
        entries = [e for e in entries if e.name in set(names)]
    objects: set[str] = set()
    for e in entries:
        objects.add(e.digest)
        objects.update(references(library.store.get_manifest(e.digest)))
    doc = {"format": ARCHIVE_FORMAT, "exported": now(),
           "entries": [e.to_json(descriptors=True) for e in entries]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, "wb") as fh, \
                tarfile.open(fileobj=fh, mode="w:gz" if _gz(path) else "w") as tar:
            data = json.dumps(doc, indent=1).encode()
            info = tarfile.TarInfo(INDEX_MEMBER)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            import io

            tar.addfile(info, io.BytesIO(data))
            for digest in sorted(objects):
                suffix = ".json.z" if digest in {e.digest for e in entries} else ".npy"
                src = library.store.path(digest, suffix)
                if not src.is_file():
                    raise LibraryError(src, "object missing (run `modelprint library verify`)")
                info = tarfile.TarInfo(f"objects/{digest[:2]}/{digest}{suffix}")
                info.size, info.mtime, info.mode = src.stat().st_size, 0, 0o644
                with src.open("rb") as obj:
                    tar.addfile(info, obj)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(entries)


def _member_name(path: Path, member: tarfile.TarInfo) -> str:
    name = member.name
    if not member.isfile():
        raise LibraryError(path, f"archive member {name!r} is not a regular file "
                                 "(links and devices are refused)")
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or "\\" in name:
        raise LibraryError(path, f"archive member {name!r} has an unsafe path")
    if member.size > (MAX_INDEX if name == INDEX_MEMBER else MAX_MEMBER):
        raise LibraryError(path, f"archive member {name!r} is larger than allowed")
    return name


def import_archive(library: ModelLibrary, path: Path) -> int:
    """Check the whole archive, then add its entries; returns how many were new."""
    if not path.is_file():
        raise LibraryError(path, "no such archive")
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=library.root))
    try:
        doc, staged = _stage(path, staging)
        entries = _entries(path, doc)
        for e in entries:
            if (e.digest, ".json.z") not in staged:
                raise LibraryError(path, f"entry {e.name!r}: manifest missing from the archive")
            manifest = json.loads(_zlib(staging / f"{e.digest}.json.z", path))
            for ref in set(references(manifest)):
                if (ref, ".npy") not in staged and not library.store.has(ref, ".npy"):
                    raise LibraryError(path, f"entry {e.name!r}: array {ref} missing")
        for e in entries:
            old = library.index.get(e.name)
            if old is not None and old.digest != e.digest:
                raise LibraryError(path, f"entry {e.name!r} is already in the library as "
                                   f"another model ({old.reference}); remove it first")
        for digest, suffix in staged:  # whole, hashed objects: rename into the store
            target = library.store.path(digest, suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                (staging / f"{digest}{suffix}").replace(target)
        added = 0
        with library.index.write() as db:
            for e in entries:
                old = library.index.get(e.name)
                if old is None:
                    library.insert_entry(db, e)
                    added += 1
        return added
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _zlib(path: Path, archive: Path) -> bytes:
    import zlib

    try:
        d = zlib.decompressobj()
        data = d.decompress(path.read_bytes(), 256 * 1024 ** 2)
    except zlib.error as exc:
        raise LibraryError(archive, f"corrupt manifest {path.name} ({exc})") from None
    return data


def _stage(path: Path, staging: Path) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    doc: dict[str, Any] | None = None
    staged: set[tuple[str, str]] = set()
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 -- closed by the `with` below
    except (tarfile.TarError, OSError) as exc:
        raise LibraryError(path, f"not a readable tar archive ({exc})") from None
    with tar:
        try:
            for member in tar:
                name = _member_name(path, member)
                fh = tar.extractfile(member)
                if fh is None:
                    raise LibraryError(path, f"archive member {name!r} cannot be read")
                if name == INDEX_MEMBER:
                    try:
                        doc = json.loads(fh.read())
                    except ValueError as exc:
                        raise LibraryError(path, f"{INDEX_MEMBER} is not JSON ({exc})") from None
                    continue
                m = _OBJECT.match(name)
                if m is None or m.group(1) != m.group(2)[:2]:
                    raise LibraryError(path, f"unexpected archive member {name!r}")
                digest, suffix = m.group(2), m.group(3)
                h = hashlib.sha256()
                out = staging / f"{digest}{suffix}"
                with out.open("wb") as dst:
                    while chunk := fh.read(1 << 20):
                        dst.write(chunk)
                        if suffix == ".npy":
                            h.update(chunk)
                if suffix == ".json.z":
                    h.update(_zlib(out, path))
                if h.hexdigest() != digest:
                    raise LibraryError(path, f"archive member {name!r} does not match its "
                                             "digest (corrupt or tampered)")
                staged.add((digest, suffix))
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise LibraryError(path, f"truncated or corrupt archive ({exc})") from None
    if doc is None:
        raise LibraryError(path, f"not a modelprint library archive (no {INDEX_MEMBER})")
    return doc, staged


def _entries(path: Path, doc: Any) -> list[Entry]:
    if not isinstance(doc, dict) or doc.get("format") != ARCHIVE_FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else None
        raise LibraryError(path, f"archive format {fmt!r} is not {ARCHIVE_FORMAT!r}")
    raw = doc.get("entries")
    if not isinstance(raw, list):
        raise LibraryError(path, "'entries' must be a list")
    out = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        try:
            e = Entry.from_json(item)
        except (ValueError, TypeError) as exc:
            raise LibraryError(path, f"entry {i}: {exc}") from None
        if not re.fullmatch(r"[0-9a-f]{64}", e.digest):
            raise LibraryError(path, f"entry {e.name!r}: malformed digest")
        if e.name in seen:
            raise LibraryError(path, f"entry name {e.name!r} appears twice")
        seen.add(e.name)
        out.append(e)
    return out
