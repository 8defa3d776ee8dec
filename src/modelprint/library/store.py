"""Content-addressed storage of fingerprints: binary arrays, a small JSON manifest each.

A ``*.fp.json`` carries its sketches as base64 text (4/3 of the bytes, and a JSON parse of
megabytes per load). The library keeps the same information as raw ``.npy`` arrays named by
the sha256 of their bytes (``objects/ab/<sha>.npy``), and per fingerprint a *manifest*: the
fingerprint JSON with every sketch payload and every long float list replaced by a reference
``{"$npy": sha}`` (``objects/cd/<sha>.json.z``, zlib, named by the sha256 of the canonical
uncompressed JSON). The manifest's digest is therefore a Merkle hash of the whole fingerprint:
it names the entry, equal fingerprints are stored once, and an identical array (a frozen
embedding, an exact copy's layers) is stored once however many entries share it.

Every file is written to a temporary name and renamed, so a killed writer leaves either the
whole object or none (a stray ``.tmp`` at worst, which :func:`Store.orphans` reports).
Arrays are read with ``np.load(allow_pickle=False)``: an object array is refused, never
unpickled.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.errors import InputError
from modelprint.fingerprint.model import Fingerprint, _finite

#: Float lists at least this long become float64 arrays (biases, norm gains).
MIN_LIST = 16
#: Only these array dtypes are ever stored or read (no object arrays, no structured types).
ALLOWED_DTYPES = ("<f2", "<f4", "<f8", "<i8")
#: A manifest larger than this (uncompressed) is refused as hostile.
MAX_MANIFEST = 256 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]{64}$")


class LibraryError(InputError):
    """A library folder, index or object that cannot be used (names the file and cause)."""


def canonical_json(obj: Any) -> bytes:
    """The one byte string a manifest is hashed and stored as."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode("utf-8")


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


class Store:
    """The ``objects/`` folder of a library."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "objects"

    # -- paths ---------------------------------------------------------------------------
    def path(self, digest: str, suffix: str) -> Path:
        if not _HEX.match(digest):
            raise LibraryError(self.root, f"malformed object name {digest!r}")
        return self.root / digest[:2] / f"{digest}{suffix}"

    def _write(self, target: Path, data: bytes) -> None:
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- arrays --------------------------------------------------------------------------
    def put_array(self, arr: np.ndarray) -> str:
        data = _npy_bytes(arr)
        digest = hashlib.sha256(data).hexdigest()
        self._write(self.path(digest, ".npy"), data)
        return digest

    def get_array(self, digest: str) -> np.ndarray:
        path = self.path(digest, ".npy")
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise LibraryError(path, "object missing from the library "
                                     "(run `modelprint library verify`)") from None
        except ValueError as exc:  # includes "Object arrays cannot be loaded ..."
            raise LibraryError(path, f"not a plain numeric array ({exc})") from None
        except MemoryError:        # a header claiming more than can be allocated
            raise LibraryError(path, "not a plain numeric array (its header claims an array "
                                     "too large to allocate; run `modelprint library "
                                     "verify`)") from None
        if arr.dtype.str not in ALLOWED_DTYPES:
            raise LibraryError(path, f"array dtype {arr.dtype.str} is not one the library "
                                     "stores")
        return arr

    # -- manifests -----------------------------------------------------------------------
    def put_manifest(self, manifest: dict[str, Any]) -> str:
        data = canonical_json(manifest)
        digest = hashlib.sha256(data).hexdigest()
        self._write(self.path(digest, ".json.z"), zlib.compress(data, 6))
        return digest

    def get_manifest(self, digest: str) -> dict[str, Any]:
        path = self.path(digest, ".json.z")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LibraryError(path, "manifest missing from the library "
                                     "(run `modelprint library verify`)") from None
        try:
            d = zlib.decompressobj()
            data = d.decompress(raw, MAX_MANIFEST)
            if d.unconsumed_tail:
                raise LibraryError(path, "manifest larger than the library reads")
            out = json.loads(data)
        except (zlib.error, ValueError) as exc:
            raise LibraryError(path, f"corrupt manifest ({exc})") from None
        if not isinstance(out, dict):
            raise LibraryError(path, "corrupt manifest (not a JSON object)")
        return out

    def has(self, digest: str, suffix: str) -> bool:
        return self.path(digest, suffix).is_file()

    # -- fingerprints --------------------------------------------------------------------
    def put_fingerprint(self, fp: Fingerprint) -> tuple[str, set[str]]:
        """Store ``fp``; returns its digest and the array digests it references."""
        arrays: dict[str, np.ndarray] = {}
        manifest = split(_finite(fp.to_json()), arrays)
        for digest, arr in arrays.items():
            self._write(self.path(digest, ".npy"), _npy_bytes(arr))
        return self.put_manifest(manifest), set(arrays)

    def get_fingerprint(self, digest: str) -> Fingerprint:
        manifest = self.get_manifest(digest)
        data = join(manifest, self.get_array)
        return Fingerprint.from_json(data, where=str(self.path(digest, ".json.z")))

    def bytes_of(self, digest: str) -> int:
        """Stored bytes of one entry: its manifest and every array it references."""
        manifest = self.get_manifest(digest)
        total = self.path(digest, ".json.z").stat().st_size
        for ref in set(references(manifest)):
            p = self.path(ref, ".npy")
            total += p.stat().st_size if p.exists() else 0
        return total

    def files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from (p for p in self.root.glob("*/*") if p.is_file())


def references(manifest: Any) -> Iterator[str]:
    """Every array digest a manifest refers to."""
    if isinstance(manifest, dict):
        ref = manifest.get("$npy")
        if isinstance(ref, str) and len(manifest) <= 2:
            yield ref
            return
        for v in manifest.values():
            yield from references(v)
    elif isinstance(manifest, list):
        for v in manifest:
            yield from references(v)


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(_npy_bytes(arr)).hexdigest()


def split(obj: Any, arrays: dict[str, np.ndarray], key: str = "") -> Any:
    """Fingerprint JSON -> manifest: sketch payloads (``values`` base64 float16) and float
    lists of at least :data:`MIN_LIST` elements become array references."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k == "values" and isinstance(v, str):
                arr = np.frombuffer(base64.b64decode(v), dtype="<f2")
                d = _digest(arr)
                arrays[d] = arr
                out[k] = {"$npy": d, "enc": "b64f2"}
            else:
                out[k] = split(v, arrays, k)
        return out
    if isinstance(obj, list):
        if len(obj) >= MIN_LIST and all(type(v) is float for v in obj):
            arr = np.asarray(obj, dtype="<f8")
            d = _digest(arr)
            arrays[d] = arr
            return {"$npy": d}
        return [split(v, arrays, key) for v in obj]
    return obj


def join(obj: Any, get: Any) -> Any:
    """Manifest -> fingerprint JSON, the inverse of :func:`split` (exact: float16 bytes are
    re-encoded as they were, float64 lists come back bit for bit)."""
    if isinstance(obj, dict):
        ref = obj.get("$npy")
        if isinstance(ref, str) and len(obj) <= 2:
            arr = get(ref)
            if obj.get("enc") == "b64f2":
                return base64.b64encode(np.ascontiguousarray(arr, dtype="<f2").tobytes()
                                        ).decode("ascii")
            return np.asarray(arr, dtype=np.float64).tolist()
        return {k: join(v, get) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join(v, get) for v in obj]
    return obj
