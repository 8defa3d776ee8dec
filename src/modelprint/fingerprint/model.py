"""The Fingerprint: everything the checks need to know about one model, as plain data.

It is what one streaming pass over a model produces and what a ``*.fp.json`` file holds, so a
reference whose weights are not at hand can still be compared. Readers ignore keys they do
not know; :data:`FORMAT` is bumped when the meaning of an existing key changes.

Versions: ``modelprint.fingerprint/2`` makes the ``sketches`` section (its own ``version``,
:data:`modelprint.fingerprint.sketches.SKETCH_VERSION`) part of the format: the embedding rows
of sampled token strings, seeded sub-matrices and the Q/K projection sketches that
``identity``, ``weights_cosine``, ``embedding_alignment``, ``attention_cka``,
``mlp_matching`` and ``moe_upcycling`` read when the weights are absent. Files of format
``/1`` (statistics, curves and vectors; sketches optional) are still read -- the
sketch-based checks then say "not applicable" for want of sketches. A sketch version newer
than this modelprint reads is refused with a message to re-create the file, rather than
silently compared as if it meant what this version's sketches mean.

``modelprint.fingerprint/3`` identifies each stored tensor by the BLAKE3 digest of its bytes
(key ``blake3``) instead of sha256 (key ``sha256`` in ``/1`` and ``/2``): every stored byte is
hashed twice on a cold fingerprint (its file's sha256, kept for provenance and the cache key,
and its tensor's digest), and BLAKE3 runs at ~4.6 GB/s on one core here against sha256's
~1.8 GB/s (benchmarks/peers/RESULTS.md). Digests of different algorithms are never compared as
if they could match; ``identity`` says so when two fingerprints hold different ones.

JSON layout (see CONTRACT.md)::

    {"format": "modelprint.fingerprint/3",
     "model": {"reference", "kind", "revision", "files": {relpath: sha256}, "modelprint_version"},
     "architecture": {ArchInfo fields},
     "tensors": [{"role","layer","expert","tensor","shape","dtype","count","mean","std","l2",
                  "blake3"}],                            # "sha256" in /1 and /2
     "curves": {role: {"std": [per layer or null], "mean": [...], "l2": [...]}},
     "vectors": {role: [[float, ...] or null per layer]},   # biases and norms, raw stored values
     "documents": {"files": [...], "findings": [...]},      # repository files (license scan)
     "metadata": {...},                                      # small GGUF/safetensors metadata
     "sketches": {...}}                                      # compact samples for alignment checks
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelprint._atomic import atomic_write_text
from modelprint.arch.base import ArchInfo
from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint.packed import sketches_json
from modelprint.fingerprint.schema import reject_constant, validate
from modelprint.fingerprint.sketches import SKETCH_VERSION
from modelprint.limits import MAX_FP_BYTES, MAX_FP_DEPTH
from modelprint.sources._files import loads_strict

FORMAT = "modelprint.fingerprint/3"
#: Formats this version reads: /1 files lack (or may lack) the sketches section; /1 and /2
#: files carry sha256 tensor digests.
READABLE_FORMATS = (FORMAT, "modelprint.fingerprint/2", "modelprint.fingerprint/1")
#: The per-tensor digest each readable format carries (the JSON key and the algorithm).
TENSOR_DIGEST = {FORMAT: "blake3", "modelprint.fingerprint/2": "sha256",
                 "modelprint.fingerprint/1": "sha256"}


@dataclass
class TensorStat:
    """Float64 statistics of one role slot (one layer's Q, one expert's up, ...)."""

    role: str
    layer: int | None
    expert: int | None
    tensor: str                 # stored tensor name the slot was read from
    shape: list[int]            # shape of the slot in HF layout
    dtype: str                  # stored dtype of the backing tensor
    count: int
    mean: float
    std: float                  # unbiased (ddof=1), as torch.std on the float64 values
    l2: float                   # Frobenius norm
    blake3: str = ""            # of the backing stored tensor's bytes (format /3)
    sha256: str = ""            # the same, in fingerprints of format /1 and /2

    @property
    def digest(self) -> str:
        """``"<algorithm>:<hex>"`` of the stored bytes ("" when unknown): digests compare
        equal only within one algorithm."""
        if self.blake3:
            return f"blake3:{self.blake3}"
        return f"sha256:{self.sha256}" if self.sha256 else ""

    def to_json(self, algorithm: str) -> dict[str, Any]:
        out = asdict(self)
        for alg in ("blake3", "sha256"):
            if alg != algorithm:
                del out[alg]
        return out


@dataclass
class ModelInfo:
    reference: str
    kind: str                   # "directory" | "safetensors" | "gguf" | "hf" | "fingerprint"
    revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    modelprint_version: str = ""


@dataclass
class Fingerprint:
    model: ModelInfo
    architecture: ArchInfo
    tensors: list[TensorStat] = field(default_factory=list)
    curves: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    vectors: dict[str, list[list[float] | None]] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    sketches: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT

    # -- convenience accessors used by the checks -------------------------------------
    @property
    def name(self) -> str:
        return self.model.reference

    @property
    def num_layers(self) -> int:
        return self.architecture.num_layers

    def curve(self, role: str, stat: str = "std") -> list[float | None] | None:
        """Per-layer curve of ``stat`` for ``role``; None when the model lacks the role."""
        c = self.curves.get(role, {}).get(stat)
        if c is None or all(v is None for v in c):
            return None
        return c

    def vector(self, role: str, layer: int) -> list[float] | None:
        vs = self.vectors.get(role)
        if vs is None or layer >= len(vs):
            return None
        return vs[layer]

    def has_role(self, role: str) -> bool:
        return self.curve(role) is not None or role in self.vectors

    # -- JSON --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "model": asdict(self.model),
            "architecture": self.architecture.to_json(),
            "tensors": [t.to_json(TENSOR_DIGEST[self.format]) for t in self.tensors],
            "curves": self.curves,
            "vectors": self.vectors,
            "documents": self.documents,
            "metadata": self.metadata,
            "sketches": sketches_json(self.sketches),
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "<fingerprint>", *,
                  validated: bool = False) -> Fingerprint:
        """``validated``: the data is known to pass the schema (the fingerprint cache's own
        entry, byte for byte as written and checked: ``fingerprint/cache.py``)."""
        if not isinstance(data, dict):
            raise FingerprintFormatError(where, "not a JSON object")
        fmt = data.get("format")
        if fmt not in READABLE_FORMATS:
            raise FingerprintFormatError(
                where,
                f"format {fmt!r} is not readable by this modelprint "
                f"(reads {', '.join(READABLE_FORMATS)}); "
                "re-create it with `modelprint fingerprint`",
            )
        sketches = data.get("sketches", {}) or {}
        if not isinstance(sketches, dict):
            raise FingerprintFormatError(where, "sketches: must be an object")
        version = sketches.get("version", SKETCH_VERSION)
        if sketches and (not isinstance(version, int) or isinstance(version, bool)
                         or not 1 <= version <= SKETCH_VERSION):
            raise FingerprintFormatError(
                where, f"sketch version {version!r} is not readable by this modelprint (reads "
                f"1-{SKETCH_VERSION}); re-create it with `modelprint fingerprint`")
        if not validated:
            validate(data, where, TENSOR_DIGEST[fmt])
        # ``kind`` is optional in the schema (older files, hand-written references): "" then
        model = ModelInfo(**{"kind": "", **{k: v for k, v in data["model"].items()
                                            if k in ModelInfo.__dataclass_fields__}})
        try:
            arch = ArchInfo.from_json(data["architecture"])
        except TypeError as exc:   # a required field missing (types were validated)
            raise FingerprintFormatError(where, f"architecture: {exc}") from None
        tensors = [TensorStat(**{k: v for k, v in t.items()
                                 if k in TensorStat.__dataclass_fields__})
                   for t in data.get("tensors", [])]
        return cls(
            model=model, architecture=arch, tensors=tensors,
            curves=data.get("curves", {}), vectors=data.get("vectors", {}),
            documents=data.get("documents", {}), metadata=data.get("metadata", {}),
            sketches=sketches, format=fmt,
        )

    def to_text(self) -> str:
        """The JSON text of the file (non-finite floats as null). The usual fingerprint has
        no NaN, so it is serialised directly and only mapped through :func:`_finite` when
        ``json`` refuses one (that walk over every value was ~10 ms of a small model)."""
        data = self.to_json()
        try:
            return json.dumps(data, allow_nan=False, separators=(",", ":"))
        except ValueError:
            return json.dumps(_finite(data), allow_nan=False, separators=(",", ":"))

    def save(self, path: str | Path) -> None:
        """Write atomically: a reader never sees half a file, a crash leaves no debris."""
        atomic_write_text(path, self.to_text())

    @classmethod
    def load(cls, path: str | Path) -> Fingerprint:
        """Read and validate a fingerprint file: size and nesting depth are capped before it
        is parsed, every field is checked before it is used (``fingerprint/schema.py``)."""
        path = Path(path)
        return cls.from_bytes(read_capped(path), path)

    @classmethod
    def from_bytes(cls, raw: bytes, path: str | Path, *, validated: bool = False
                   ) -> Fingerprint:
        """Parse and (unless ``validated``, see :meth:`from_json`) validate a file's bytes."""
        if validated:   # our own cache entry, checked when written: plain parse, no schema
            return cls.from_json(json.loads(raw), where=str(path), validated=True)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FingerprintFormatError(path, f"not valid JSON ({exc})") from None
        try:
            data = loads_strict(text, MAX_FP_DEPTH, parse_constant=reject_constant)
        except (ValueError, RecursionError) as exc:
            raise FingerprintFormatError(path, f"not valid JSON ({exc})") from None
        return cls.from_json(data, where=str(path))


def read_capped(path: Path) -> bytes:
    """A fingerprint file's bytes, its size capped before it is read."""
    try:
        size = path.stat().st_size
        if size > MAX_FP_BYTES:
            raise FingerprintFormatError(
                path, f"{size} bytes, over the {MAX_FP_BYTES} byte limit of a fingerprint")
        return path.read_bytes()
    except FileNotFoundError:
        raise FingerprintFormatError(path, "file not found") from None
    except OSError as exc:
        raise FingerprintFormatError(path, f"cannot read: {exc.strerror or exc}") from None


def _finite(obj: Any) -> Any:
    """JSON has no NaN: map non-finite floats to null (they mean "no value")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
