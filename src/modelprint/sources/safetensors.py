"""safetensors weights: one file, or a directory (single file or sharded by an index).

The header is parsed here rather than through the ``safetensors`` package because every
field of a downloaded file is hostile and each defect must become a one-line
:class:`ModelFileError` naming the file: header length beyond the file, a header too big to
parse safely, duplicate JSON keys, unknown dtypes, ``data_offsets`` whose span disagrees with
dtype x shape, overlapping ranges, or data past the end of a truncated file. We also need raw
16-bit access (bfloat16 through ``ml_dtypes``) for exact bit-pattern statistics.

Data is read through a read-only ``np.memmap``: ``read_rows`` returns a view of just those
rows, so memory stays flat whatever the model size.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import ml_dtypes
import numpy as np

from modelprint.errors import ModelFileError
from modelprint.sources._files import (
    DOC_PATTERNS,
    list_repo_files,
    load_json_file,
    loads_strict,
    read_vocabulary,
)
from modelprint.sources.base import ModelSource, TensorInfo

#: Headers above this are refused (the real ones are a few hundred kB).
MAX_HEADER_BYTES = 100 * 1024 * 1024
#: More tensors than this in one file is refused (large MoE models have ~100k).
MAX_TENSORS = 1_000_000
MAX_DIMS = 8
RAW_CHUNK = 16 * 1024 * 1024

#: safetensors dtype name -> numpy dtype (little-endian, as the format stores them).
DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn), "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})

INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # relative to the data area
    end: int


class SafetensorsFile:
    """One validated safetensors file; data mapped lazily on first read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.metadata: dict[str, str] = {}
        self.entries: dict[str, _Entry] = {}
        self._mm: np.ndarray | None = None
        self._parse()

    def _fail(self, cause: str) -> ModelFileError:
        return ModelFileError(self.path, cause)

    def _parse(self) -> None:
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                prefix = fh.read(8)
                if len(prefix) < 8:
                    raise self._fail(f"truncated: {size} bytes, too short for a safetensors header")
                n = int.from_bytes(prefix, "little")
                if n > MAX_HEADER_BYTES:
                    raise self._fail(
                        f"header length {n} exceeds the {MAX_HEADER_BYTES} byte limit "
                        "(corrupt or not a safetensors file)")
                if 8 + n > size:
                    raise self._fail(
                        f"header length {n} goes beyond the end of the file ({size} bytes): "
                        "truncated or not a safetensors file")
                raw = fh.read(n)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror or exc}") from None
        try:
            header = loads_strict(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self._fail(f"header is not valid JSON ({exc})") from None
        if not isinstance(header, dict):
            raise self._fail("header must be a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            raise self._fail("__metadata__ must be a JSON object")
        self.metadata = {str(k): v if isinstance(v, str) else str(v) for k, v in meta.items()}
        if len(header) > MAX_TENSORS:
            raise self._fail(f"{len(header)} tensors exceed the limit of {MAX_TENSORS}")
        self.data_start = 8 + n
        self.data_len = size - self.data_start
        entries = [self._entry(name, spec) for name, spec in header.items()]
        entries.sort(key=lambda e: (e.begin, e.end))
        prev: _Entry | None = None
        for e in entries:
            if e.end > self.data_len:
                raise self._fail(
                    f"truncated: tensor {e.name!r} ends at data byte {e.end} but the file holds "
                    f"only {self.data_len} data bytes")
            if prev is not None and e.begin < prev.end and e.end > e.begin:
                raise self._fail(
                    f"tensors {prev.name!r} and {e.name!r} have overlapping data_offsets "
                    f"[{prev.begin}, {prev.end}) and [{e.begin}, {e.end})")
            if e.end > e.begin or prev is None:
                prev = e
        self.entries = {e.name: e for e in entries}

    def _entry(self, name: str, spec: Any) -> _Entry:
        if not isinstance(spec, dict):
            raise self._fail(f"tensor {name!r}: header entry must be an object")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise self._fail(f"tensor {name!r}: unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                           for s in shape)):
            raise self._fail(f"tensor {name!r}: invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0
                           for o in offsets)
                or offsets[1] < offsets[0]):
            raise self._fail(f"tensor {name!r}: invalid data_offsets {offsets!r}")
        numel = 1
        for s in shape:
            numel *= s
        need = numel * DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != need:
            raise self._fail(
                f"tensor {name!r}: dtype {dtype} with shape {shape} needs {need} bytes but "
                f"data_offsets span {offsets[1] - offsets[0]}")
        return _Entry(name, dtype, tuple(shape), offsets[0], offsets[1])

    def _map(self) -> np.ndarray:
        if self._mm is None:
            if self.data_len == 0:
                self._mm = np.zeros(0, dtype=np.uint8)
            else:
                try:
                    self._mm = np.memmap(self.path, dtype=np.uint8, mode="r")
                except (OSError, ValueError) as exc:
                    raise self._fail(f"cannot map file: {exc}") from None
        return self._mm

    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored bytes as a read-only uint8 view."""
        e = self.entries[name]
        mm = self._map()
        return np.asarray(mm[self.data_start + e.begin:self.data_start + e.end])

    def array(self, name: str) -> np.ndarray:
        """The whole tensor as a read-only view in its stored dtype (nothing is copied)."""
        e = self.entries[name]
        return self.raw(name).view(DTYPES[e.dtype]).reshape(e.shape)

    def close(self) -> None:
        """Drop the map; views handed out keep it alive until they are collected."""
        self._mm = None


class SafetensorsSource(ModelSource):
    """A model stored as safetensors: one file or a directory (single or sharded)."""

    def __init__(
        self, path: Path, reference: str | None = None, *, trusted_root: Path | None = None,
    ) -> None:
        self.reference = reference if reference is not None else str(path)
        self._files: list[SafetensorsFile] = []
        self._where: dict[str, SafetensorsFile] = {}
        self._index_map: dict[str, str] | None = None
        path = Path(path)
        if path.is_dir():
            self.root = path
            self._dir_mode = True
            self._config_path: Path | None = path / "config.json"
            weight_paths = self._directory_weights(path)
        else:
            neighbour = path.parent / "config.json"
            has_config = neighbour.is_file()
            self.root = path.parent if has_config else None
            self._dir_mode = False
            self._config_path = neighbour if has_config else None
            weight_paths = [path]
        self._trusted = trusted_root or self.root
        for wp in weight_paths:
            self._add_file(SafetensorsFile(wp))
        self._check_index()
        self._info = {
            name: TensorInfo(name, e.shape, e.dtype, f.path, e.end - e.begin)
            for f in self._files for name, e in f.entries.items()
        }
        self._config: dict[str, Any] | None = None

    # -- layout -------------------------------------------------------------------------
    def _directory_weights(self, root: Path) -> list[Path]:
        """The weight files: symlinks are followed wherever they point (a
        ``huggingface-cli download --local-dir`` folder links into the hub cache's blobs),
        because a weight file is validated as weights whatever it is; only the repository's
        text files must stay inside the model (:func:`list_repo_files`)."""
        index = root / INDEX_NAME
        if index.is_file():
            data = load_json_file(index, INDEX_NAME)
            wm = data.get("weight_map")
            if not isinstance(wm, dict) or not wm:
                raise ModelFileError(index, "weight_map is missing or empty")
            shards: list[str] = []
            for tensor, shard in wm.items():
                if not isinstance(shard, str) or not _plain_name(shard):
                    raise ModelFileError(index, f"tensor {tensor!r}: invalid shard name {shard!r}")
                if shard not in shards:
                    shards.append(shard)
            paths = []
            for shard in shards:
                sp = root / shard
                if not sp.is_file():
                    raise ModelFileError(index, f"shard {shard!r} listed in weight_map is missing")
                paths.append(sp)
            self._index_map = {str(k): v for k, v in wm.items()}
            return paths
        single = root / "model.safetensors"
        if single.is_file():
            candidates = [single]
        else:
            candidates = sorted(p for p in root.glob("*.safetensors") if p.is_file())
        if not candidates:
            raise ModelFileError(root, "no *.safetensors weights in this directory")
        return candidates

    def _add_file(self, f: SafetensorsFile) -> None:
        for name in f.entries:
            other = self._where.get(name)
            if other is not None:
                raise ModelFileError(
                    f.path, f"tensor {name!r} is also stored in {other.path.name}")
            self._where[name] = f
        self._files.append(f)

    def _check_index(self) -> None:
        if not self._index_map or self.root is None:
            return
        for tensor, shard in self._index_map.items():
            f = self._where.get(tensor)
            if f is None or f.path != self.root / shard:
                raise ModelFileError(
                    self.root / INDEX_NAME,
                    f"weight_map puts tensor {tensor!r} in {shard} but that shard does not hold it")

    # -- ModelSource --------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        if self._config is None:
            if self._config_path is not None and self._config_path.is_file():
                self._config = load_json_file(self._config_path, "config.json")
            else:
                self._config = {}
        return dict(self._config)

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self._files:
            for k, v in f.metadata.items():
                out.setdefault(k, v)
        return out

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._info)

    def _array(self, name: str) -> np.ndarray:
        try:
            f = self._where[name]
        except KeyError:
            raise KeyError(f"{self.reference}: no tensor named {name!r}") from None
        return f.array(name)

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        arr = self._array(name)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        return arr[start:stop]

    def read_row_set(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Scattered rows in one gather from the map (stored dtype), instead of one read per
        run: a 256-unit sample of an MLP matrix is 256 runs."""
        arr = self._array(name)
        if arr.ndim == 0:
            arr = arr.reshape(1)  # as read_rows does
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= arr.shape[0]):
            raise IndexError(f"{self.reference}: row index out of range for {name!r} "
                             f"({arr.shape[0]} rows)")
        return arr[rows]

    def iter_raw_bytes(self, name: str) -> Iterator[memoryview]:
        raw = self._where[name].raw(name)
        for i in range(0, raw.size, RAW_CHUNK):
            yield raw[i:i + RAW_CHUNK].data

    def weight_files(self) -> list[Path]:
        return [f.path for f in self._files]

    def repo_files(self) -> list[Path]:
        if self.root is None:
            return []
        trusted = self._trusted or self.root
        if self._dir_mode:
            return list_repo_files(self.root, trusted)
        return list_repo_files(self.root, trusted, DOC_PATTERNS, max_depth=1) + (
            [self._config_path] if self._config_path is not None else [])

    def vocabulary(self) -> list[str] | None:
        if self.root is None:
            return None
        return read_vocabulary(self.root, self._trusted or self.root)

    def release_pages(self) -> None:
        for f in self._files:
            mm = getattr(f._mm, "_mmap", None)  # the mmap.mmap behind np.memmap
            if mm is not None and hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        for f in self._files:
            f.close()


def _plain_name(name: str) -> bool:
    """A shard name must stay inside the model directory (no absolute paths, no '..')."""
    if not name or "\\" in name or name.startswith("/"):
        return False
    parts = PurePosixPath(name).parts
    # a part longer than any file system allows would make the lookup raise, not fail
    return (all(p not in ("..", ".", "") and len(p.encode()) <= 255 for p in parts)
            and 1 <= len(parts) <= 16)
