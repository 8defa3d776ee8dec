"""A bounds-checked GGUF header parser.

``gguf.GGUFReader`` builds one numpy view per array element, which takes ~11 s on Gemma 3's
262,144-token vocabulary and raises bare ``ValueError``/``IndexError`` on damaged files. The
format is small (magic, version, counts, key/values, tensor infos, aligned data), so we parse
it here with explicit checks, skip big arrays without materialising them, and keep the
``gguf`` package for what it is good at: its type tables and ``gguf.quants.dequantize``.
The test suite cross-checks this parser against ``GGUFReader``.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from modelprint.errors import ModelFileError
from modelprint.limits import MAX_GGUF_ARRAY, MAX_GGUF_STRING

MAGIC = b"GGUF"
MAX_KV = 1_000_000
MAX_TENSORS = 1_000_000
MAX_DIMS = 4  # GGML_MAX_DIMS
#: Arrays up to this length are kept in ``fields``; longer ones only under KEEP_ARRAYS.
SMALL_ARRAY = 64
KEEP_ARRAYS = frozenset({"tokenizer.ggml.tokens"})

# GGUF value types -> struct format (little-endian).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_NP = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?",
       10: "<u8", 11: "<i8", 12: "<f8"}
T_STRING, T_ARRAY = 8, 9
_U64 = struct.Struct("<Q")


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    dims: tuple[int, ...]  # GGUF order: ne[0] is the innermost (contiguous) dimension
    qtype: GGMLQuantizationType
    offset: int  # absolute file offset
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        """Row-major (PyTorch) order."""
        return tuple(reversed(self.dims))


@dataclass
class GGUFHeader:
    version: int
    fields: dict[str, Any] = field(default_factory=dict)
    tensors: list[GGUFTensor] = field(default_factory=list)
    data_offset: int = 0
    alignment: int = 32
    #: The tensor table as stored (name, dims, GGML type, offset relative to the data).
    raw_tensors: list[tuple[str, tuple[int, ...], int, int]] = field(default_factory=list)
    #: sha256 of the bytes before the tensor data (what the parse read).
    header_sha256: str = ""


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path, self.size = buf, 0, path, len(buf)

    def fail(self, cause: str) -> ModelFileError:
        return ModelFileError(self.path, cause)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"truncated: {what} at byte {self.pos} runs past the end of the file "
                            f"({self.size} bytes)")

    def cap(self, n: int, what: str) -> None:
        """Declared string lengths are bounded before anything is read or decoded."""
        if n > MAX_GGUF_STRING:
            raise self.fail(f"{what}: a string of {n} bytes, over the {MAX_GGUF_STRING} byte "
                            "limit of GGUF metadata (corrupt or hostile header)")

    def scalar(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self, what: str) -> str:
        n = self.scalar("<Q", what)
        self.cap(n, what)
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def strings(self, count: int, what: str, keep: bool) -> list[str] | None:
        """``count`` length-prefixed strings (None when not kept), bounds-checked.

        One tight loop instead of a :meth:`string` call per element: a vocabulary is
        hundreds of thousands of strings (Gemma 3: 262,144), and per-call overhead made this
        the slowest part of opening a GGUF file (~0.4 s of Gemma's 0.7 s).
        """
        buf, pos, size = self.buf, self.pos, self.size
        length = _U64.unpack_from
        out: list[str] = []
        add = out.append
        for _ in range(count):
            start = pos + 8
            if start > size:
                self.pos = pos
                self.need(8, what)
            (n,) = length(buf, pos)
            if n > MAX_GGUF_STRING:
                self.cap(n, what)
            pos = start + n
            if pos > size:
                self.pos = start
                self.need(n, what)
            if keep:
                add(str(buf[start:pos], "utf-8", "replace"))
        self.pos = pos
        return out if keep else None


def parse_header(buf: memoryview, path: Path) -> GGUFHeader:
    """Parse and validate everything up to the tensor data. Raises ModelFileError."""
    c = _Cursor(buf, path)
    c.need(4, "magic")
    if bytes(buf[:4]) != MAGIC:
        raise c.fail("not a GGUF file (bad magic bytes)")
    c.pos = 4
    version = c.scalar("<I", "version")
    if version & 0xFFFF == 0 and version != 0:
        raise c.fail("big-endian GGUF files are not supported")
    if version not in (2, 3):
        raise c.fail(f"unsupported GGUF version {version} (2 and 3 are read)")
    n_tensors = c.scalar("<Q", "tensor count")
    n_kv = c.scalar("<Q", "key/value count")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise c.fail(f"implausible counts ({n_tensors} tensors, {n_kv} keys): corrupt header")
    header = GGUFHeader(version)
    for _ in range(n_kv):
        key = c.string("metadata key")
        vtype = c.scalar("<I", f"type of {key}")
        value = _value(c, vtype, key)
        if key in header.fields:
            raise c.fail(f"duplicate metadata key {key!r}")
        if value is not _SKIPPED:
            header.fields[key] = value
    align = header.fields.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise c.fail(f"general.alignment {align!r} is not a power of two")
    header.alignment = align
    infos = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = c.string("tensor name")
        if name in names:
            raise c.fail(f"duplicate tensor {name!r}")
        names.add(name)
        n_dims = c.scalar("<I", f"{name} dimension count")
        if n_dims > MAX_DIMS:
            raise c.fail(f"tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = tuple(c.scalar("<Q", f"{name} dimensions") for _ in range(n_dims))
        raw_type = c.scalar("<I", f"{name} type")
        rel = c.scalar("<Q", f"{name} offset")
        infos.append((name, dims, raw_type, rel))
    header.data_offset = -(-c.pos // align) * align
    header.raw_tensors = infos
    header.header_sha256 = _header_digest(buf, min(header.data_offset, len(buf)))
    header.tensors = tensor_table(c, infos, header.data_offset, align)
    return header


def tensor_table(c: _Cursor, infos: list[tuple[str, tuple[int, ...], int, int]],
                 data_offset: int, align: int) -> list[GGUFTensor]:
    """The tensors of a header's raw table (name, dims, GGML type, relative offset), each
    checked: a known type, whole blocks per row, an aligned offset, its bytes inside the file
    and no two tensors overlapping. Shared by a fresh parse and a remembered header
    (:func:`header_from_memo`), which is checked again against the file it names."""
    tensors: list[GGUFTensor] = []
    spans = []
    for name, dims, raw_type, rel in infos:
        try:
            qtype = GGMLQuantizationType(raw_type)
            block, tsize = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise c.fail(f"tensor {name!r} has unknown GGML type {raw_type}") from None
        if dims and dims[0] % block:
            raise c.fail(f"tensor {name!r}: row length {dims[0]} is not a multiple of the "
                         f"{qtype.name} block size {block}")
        numel = 1
        for d in dims:
            numel *= d
        nbytes = numel // block * tsize
        start = data_offset + rel
        if rel % align:
            raise c.fail(f"tensor {name!r}: data offset {rel} is not aligned to {align}")
        if start + nbytes > c.size:
            raise c.fail(f"truncated: tensor {name!r} needs bytes {start}..{start + nbytes} "
                         f"but the file has {c.size}")
        t = GGUFTensor(name, dims, qtype, start, nbytes)
        tensors.append(t)
        spans.append((start, start + nbytes, name))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise c.fail(f"tensors {a!r} and {b!r} overlap in the file")
    return tensors


def header_to_memo(header: GGUFHeader) -> dict[str, Any]:
    """The header as JSON-able data (``modelprint.memo``): walking the metadata of a big
    vocabulary is most of opening a GGUF file (Gemma 3: ~0.3 s for 262,144 tokens)."""
    return {"version": header.version, "fields": header.fields, "alignment": header.alignment,
            "data_offset": header.data_offset, "header_sha256": header.header_sha256,
            "tensors": [[n, list(d), t, r] for n, d, t, r in header.raw_tensors]}


def _header_digest(buf: memoryview, end: int) -> str:
    return hashlib.sha256(buf[:end]).hexdigest()


def header_from_memo(data: Any, buf: memoryview, path: Path) -> GGUFHeader | None:
    """A remembered header, or None when it is not well-formed or the file's header bytes are
    not the ones it was parsed from (their sha256: a parse depends on nothing else but the file
    size, so a memo that passes is exactly what parsing would give); its tensor table is
    checked against the file again. A damaged or stale memo can only cost a re-parse."""
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        return None
    ints = [data.get(k) for k in ("version", "alignment", "data_offset")]
    raw = data.get("tensors")
    if not all(type(x) is int for x in ints) or not isinstance(raw, list):
        return None
    version, align, offset = (int(x) for x in ints if isinstance(x, int))
    if version not in (2, 3) or align <= 0 or align & (align - 1) or not 0 <= offset <= len(buf):
        return None
    if data.get("header_sha256") != _header_digest(buf, offset):
        return None
    infos: list[tuple[str, tuple[int, ...], int, int]] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
                and isinstance(item[1], list) and len(item[1]) <= MAX_DIMS
                and all(type(x) is int and x >= 0 for x in (*item[1], item[2], item[3]))):
            return None
        infos.append((item[0], tuple(item[1]), item[2], item[3]))
    if len({n for n, *_ in infos}) != len(infos):
        return None
    try:
        tensors = tensor_table(_Cursor(buf, path), infos, offset, align)
    except ModelFileError:
        return None
    header = GGUFHeader(version, dict(data["fields"]), tensors, offset, align)
    header.raw_tensors = infos
    header.header_sha256 = data["header_sha256"]
    return header


class _Skipped:
    pass


_SKIPPED = _Skipped()


def _value(c: _Cursor, vtype: int, key: str) -> Any:
    if vtype in _SCALARS:
        return c.scalar(_SCALARS[vtype], key)
    if vtype == T_STRING:
        return c.string(key)
    if vtype != T_ARRAY:
        raise c.fail(f"metadata {key!r} has unknown value type {vtype}")
    itype = c.scalar("<I", key)
    count = c.scalar("<Q", key)
    if count > MAX_GGUF_ARRAY:
        raise c.fail(f"metadata {key!r}: an array of {count} items, over the limit of "
                     f"{MAX_GGUF_ARRAY}")
    keep = count <= SMALL_ARRAY or key in KEEP_ARRAYS
    if itype in _NP:
        dt = np.dtype(_NP[itype])
        c.need(count * dt.itemsize, key)
        start = c.pos
        c.pos += count * dt.itemsize
        if not keep:
            return _SKIPPED
        return np.frombuffer(c.buf, dtype=dt, count=count, offset=start).tolist()
    if itype == T_STRING:
        c.need(count * 8, key)  # each string needs at least its length field
        values = c.strings(count, key, keep)
        return values if values is not None else _SKIPPED
    if itype == T_ARRAY:
        if count:
            raise c.fail(f"metadata {key!r}: nested arrays are not supported")
        return []
    raise c.fail(f"metadata {key!r} has unknown array element type {itype}")
