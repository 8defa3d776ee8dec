"""The ``*.fp.json`` reader's schema: every field checked before the checks see it.

A fingerprint file stands in for a model, so it arrives from anyone: a mutated file must be
refused with one line naming the file and the field (``sketches.matrix["attn.q|0|-"].values:
...``), never reach a check as a list where a dict was meant, a shape of 2**40 or a sketch
whose values do not fill its rows x cols. The order matters: sizes are capped before anything
is allocated (file size, then nesting depth, then container lengths), numbers are finite,
and every dimension a file declares is bounded by its own ``architecture`` section
(:func:`arch_bound`), so what a check later allocates from a declared shape stays small.

Keys this version does not know are ignored, as CONTRACT.md promises; known keys are checked.
Sketch kinds are validated generically (another kind may be added next to ``matrix``,
``embedding`` and ``projection``): an entry holds base64 float16 ``values`` and either
``rows``/``cols`` (a sub-matrix of ``shape``) or ``dims``.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint.sketches import EMBED_TOKENS
from modelprint.limits import ARCH_RANGES, MAX_EXPERTS, MAX_VECTOR_VALUE

#: Longest text field (names, hashes, excerpts) and most entries of one list or object.
MAX_TEXT = 1 << 20
MAX_ITEMS = 1 << 22
#: Most float16 values in one sketch entry (1024 tokens x 16k wide, or 64 x 64 sub-matrices).
MAX_SKETCH_VALUES = 1 << 24
#: Roles whose sketches' columns index the residual stream (they read a norm's output).
RESIDUAL_READERS = frozenset({"attn.q", "attn.k", "attn.v", "mlp.gate", "mlp.up",
                              "moe.expert.gate", "moe.expert.up", "moe.router"})
#: Vectors that are norm gains over the residual stream (length = hidden_size).
RESIDUAL_NORMS = frozenset({"norm.attn", "norm.mlp"})


class _Check:
    """Validation helpers that raise one-line :class:`FingerprintFormatError` for a field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, at: str, cause: str) -> FingerprintFormatError:
        return FingerprintFormatError(self.where, f"{at}: {cause}" if at else cause)

    def obj(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(at, f"must be an object, not {_kind(value)}")
        if len(value) > MAX_ITEMS:
            raise self.fail(at, f"{len(value)} keys, over the limit of {MAX_ITEMS}")
        return value

    def array(self, value: Any, at: str, max_len: int = MAX_ITEMS) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(at, f"must be a list, not {_kind(value)}")
        if len(value) > max_len:
            raise self.fail(at, f"{len(value)} items, over the limit of {max_len}")
        return value

    def text(self, value: Any, at: str, *, optional: bool = False,
             max_len: int = MAX_TEXT) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(at, f"must be text, not {_kind(value)}")
        if len(value) > max_len:
            raise self.fail(at, f"{len(value)} characters, over the limit of {max_len}")
        return value

    def integer(self, value: Any, at: str, lo: int, hi: int, *, optional: bool = False
                ) -> int | None:
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(at, f"must be an integer, not {_kind(value)}")
        if not lo <= value <= hi:
            raise self.fail(at, f"{value} is outside {lo}..{hi}")
        return value

    def number(self, value: Any, at: str, *, optional: bool = False) -> float | None:
        if value is None and optional:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.fail(at, f"must be a number, not {_kind(value)}")
        if not math.isfinite(value):
            raise self.fail(at, f"{value} is not a finite number")
        return float(value)

    def boolean(self, value: Any, at: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(at, f"must be true or false, not {_kind(value)}")
        return value

    def numbers(self, value: Any, at: str, max_len: int, *, nulls: bool,
                limit: float = math.inf) -> None:
        """A list of finite numbers (``null`` allowed where ``nulls``) of magnitude at most
        ``limit``, checked in bulk."""
        items = self.array(value, at, max_len)
        if _all_finite_numbers(items, nulls, limit):
            return      # the common case, checked in bulk; the loop below names a culprit
        for i, v in enumerate(items):
            if v is None and nulls:
                continue
            if (not isinstance(v, (int, float)) or isinstance(v, bool)
                    or not math.isfinite(v)):
                raise self.fail(f"{at}[{i}]", f"must be a finite number{' or null' * nulls}, "
                                              f"not {_short(v)}")
            if abs(v) > limit:
                raise self.fail(f"{at}[{i}]", f"{_short(v)} is beyond the float32 range a "
                                              "norm gain or bias can hold "
                                              f"(|value| <= {limit:.4g})")

    def flat(self, value: Any, at: str) -> None:
        """JSON scalars, or a list of them (report fields, findings)."""
        if isinstance(value, str):
            self.text(value, at)
        elif isinstance(value, list):
            for i, v in enumerate(self.array(value, at, 65536)):
                if isinstance(v, (dict, list)):
                    raise self.fail(f"{at}[{i}]", f"must be a plain value, not {_kind(v)}")
                self.flat(v, f"{at}[{i}]")
        elif isinstance(value, float) and not math.isfinite(value):
            raise self.fail(at, f"{value} is not a finite number")
        elif isinstance(value, dict):
            raise self.fail(at, "must be a plain value or a list, not an object")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean",
            type(None): "null", int: "an integer", float: "a number"}.get(type(value),
                                                                          type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def arch_bound(arch: dict[str, Any]) -> int:
    """Largest dimension any tensor or sketch of this architecture may declare.

    Four times the widest declared size (hidden, intermediate, vocabulary, all heads): real
    matrices (fused QKV, DeepSeek's MLA up-projections, expert stacks) stay within it, and a
    hostile ``shape`` cannot ask a check for more than the architecture already admits.
    """
    widths = [arch["hidden_size"], arch.get("intermediate_size") or 0,
              arch.get("vocab_size") or 0,
              (arch["num_heads"] + 2 * arch["num_kv_heads"]) * arch["head_dim"]]
    return 4 * max(widths)


# -- sections -------------------------------------------------------------------------------
def validate(data: dict[str, Any], where: str, digest: str = "blake3") -> None:
    """Check every known section of a parsed fingerprint; raise on the first violation.
    ``digest``: the tensors' digest field of the file's format (``blake3``, or ``sha256``
    before format /3)."""
    c = _Check(where)
    _model(c, data.get("model"))
    arch = _architecture(c, data.get("architecture"))
    bound = arch_bound(arch)
    layers = arch["num_layers"]
    _tensors(c, data.get("tensors", []), layers, bound, digest)
    _curves(c, data.get("curves", {}), layers)
    _vectors(c, data.get("vectors", {}), layers, bound, arch["hidden_size"])
    _documents(c, data.get("documents", {}))
    meta = c.obj(data.get("metadata", {}), "metadata")
    if "model_vectors" in meta:
        for role, vec in c.obj(meta["model_vectors"], "metadata.model_vectors").items():
            c.numbers(vec, f"metadata.model_vectors[{role!r}]", bound, nulls=False,
                      limit=MAX_VECTOR_VALUE)
    sketches = data.get("sketches", {}) or {}
    _sketches(c, sketches, arch, bound)


def _model(c: _Check, value: Any) -> None:
    model = c.obj(value, "model")
    c.text(model.get("reference"), "model.reference")
    c.text(model.get("kind", ""), "model.kind", max_len=64)
    c.text(model.get("revision"), "model.revision", optional=True, max_len=256)
    c.text(model.get("modelprint_version", ""), "model.modelprint_version", max_len=256)
    for name, sha in c.obj(model.get("files", {}), "model.files").items():
        c.text(name, "model.files", max_len=4096)
        c.text(sha, f"model.files[{name!r}]", max_len=256)


_OPTIONAL_ARCH = frozenset({"intermediate_size", "vocab_size", "num_experts"})
_ARCH_INTS: dict[str, tuple[int, int, bool]] = {   # field: (lo, hi, optional)
    name: (lo, hi, name in _OPTIONAL_ARCH) for name, (lo, hi) in ARCH_RANGES.items()}


def _architecture(c: _Check, value: Any) -> dict[str, Any]:
    arch = c.obj(value, "architecture")
    c.text(arch.get("family"), "architecture.family", max_len=256)
    for name, (lo, hi, optional) in _ARCH_INTS.items():
        c.integer(arch.get(name), f"architecture.{name}", lo, hi, optional=optional)
    if "norm_offset" in arch:
        c.number(arch["norm_offset"], "architecture.norm_offset")
    if "tied_embeddings" in arch:
        c.boolean(arch["tied_embeddings"], "architecture.tied_embeddings")
    for name in ("dtype", "model_type"):
        if name in arch:
            c.text(arch[name], f"architecture.{name}", max_len=256)
    return arch


#: Every field of a ``TensorStat`` (``null`` is allowed where noted below, absence is not).
#: The digest field (``blake3`` or ``sha256``, by format) is required besides these.
_TENSOR_FIELDS = ("role", "layer", "expert", "tensor", "shape", "dtype", "count", "mean", "std",
                  "l2")


def _tensors(c: _Check, value: Any, layers: int, bound: int, digest: str) -> None:
    for i, t in enumerate(c.array(value, "tensors")):
        at = f"tensors[{i}]"
        t = c.obj(t, at)
        missing = [k for k in (*_TENSOR_FIELDS, digest) if k not in t]
        if missing:
            raise c.fail(at, f"missing field {missing[0]!r}")
        for name in ("role", "tensor", "dtype", digest):
            c.text(t.get(name), f"{at}.{name}", max_len=4096)
        c.integer(t.get("layer"), f"{at}.layer", 0, max(layers - 1, 0), optional=True)
        c.integer(t.get("expert"), f"{at}.expert", 0, MAX_EXPERTS, optional=True)
        shape = c.array(t.get("shape"), f"{at}.shape", 8)
        for j, d in enumerate(shape):
            c.integer(d, f"{at}.shape[{j}]", 0, bound)
        c.integer(t.get("count"), f"{at}.count", 0, 1 << 62)
        for name in ("mean", "std", "l2"):
            c.number(t.get(name), f"{at}.{name}", optional=True)


def _curves(c: _Check, value: Any, layers: int) -> None:
    for role, stats in c.obj(value, "curves").items():
        for stat, curve in c.obj(stats, f"curves[{role!r}]").items():
            at = f"curves[{role!r}].{stat}"
            c.numbers(curve, at, layers, nulls=True)
            if len(curve) != layers:
                raise c.fail(at, f"{len(curve)} values for {layers} layers")


def _vectors(c: _Check, value: Any, layers: int, bound: int, hidden: int) -> None:
    for role, per_layer in c.obj(value, "vectors").items():
        at = f"vectors[{role!r}]"
        if len(c.array(per_layer, at, layers)) != layers:
            raise c.fail(at, f"{len(per_layer)} entries for {layers} layers")
        for i, vec in enumerate(per_layer):
            if vec is None:
                continue
            c.numbers(vec, f"{at}[{i}]", bound, nulls=False, limit=MAX_VECTOR_VALUE)
            if role in RESIDUAL_NORMS and len(vec) != hidden:
                raise c.fail(f"{at}[{i}]", f"{len(vec)} gains for hidden_size {hidden}")


def _documents(c: _Check, value: Any) -> None:
    docs = c.obj(value, "documents")
    for section in ("files", "findings"):
        for i, item in enumerate(c.array(docs.get(section, []), f"documents.{section}")):
            for key, v in c.obj(item, f"documents.{section}[{i}]").items():
                c.flat(v, f"documents.{section}[{i}].{key}")
    for key, v in docs.items():
        if key not in ("files", "findings"):
            c.flat(v, f"documents.{key}")


def _sketches(c: _Check, value: Any, arch: dict[str, Any], bound: int) -> None:
    sketches = c.obj(value, "sketches")
    for kind, section in sketches.items():
        if kind == "version":
            continue
        at = f"sketches.{kind}"
        section = c.obj(section, at)
        if "values" in section:          # one entry (the embedding sample)
            _entry(c, section, at, bound, arch)
            continue
        for key, entry in section.items():
            eat = f'{at}["{key}"]'
            role = _slot_key(c, key, eat, arch["num_layers"])
            _entry(c, c.obj(entry, eat), eat, bound, arch, role)


def _slot_key(c: _Check, key: str, at: str, layers: int) -> str:
    parts = key.split("|")
    if len(parts) != 3 or not parts[0]:
        raise c.fail(at, "a sketch key is ROLE|LAYER|EXPERT")
    for part, hi, what in ((parts[1], layers - 1, "layer"), (parts[2], MAX_EXPERTS, "expert")):
        if part == "-":
            continue
        if not (part.isascii() and part.isdigit()) or int(part) > hi:
            raise c.fail(at, f"{what} {part!r} is not '-' or an integer in 0..{max(hi, 0)}")
    return parts[0]


def _entry(c: _Check, entry: dict[str, Any], at: str, bound: int, arch: dict[str, Any],
           role: str | None = None) -> None:
    """One sketch entry: its declared dimensions, then its values (decoded one at a time)."""
    if "dims" in entry:
        dims = c.array(entry["dims"], f"{at}.dims", 4)
        if not dims:
            raise c.fail(f"{at}.dims", "is empty")
        expected = 1
        for j, d in enumerate(dims):
            # an embedding sketch's rows are sampled tokens: at most EMBED_TOKENS of them,
            # whatever the architecture section says (it need not name a vocabulary size)
            hi = max(bound, EMBED_TOKENS) if j == 0 and "tokens" in entry else bound
            expected *= c.integer(d, f"{at}.dims[{j}]", 0, hi) or 0
        if "tokens" in entry:
            tokens = c.array(entry["tokens"], f"{at}.tokens", MAX_SKETCH_VALUES)
            for j, tok in enumerate(tokens):
                c.text(tok, f"{at}.tokens[{j}]", max_len=65536)
            if len(tokens) != dims[0]:
                raise c.fail(f"{at}.tokens", f"{len(tokens)} tokens for {dims[0]} rows")
    elif "rows" in entry and "cols" in entry:
        shape = c.array(entry.get("shape"), f"{at}.shape", 2)
        if len(shape) != 2:
            raise c.fail(f"{at}.shape", "must be [rows, cols]")
        n_rows = c.integer(shape[0], f"{at}.shape[0]", 1, bound) or 0
        n_cols = c.integer(shape[1], f"{at}.shape[1]", 1, bound) or 0
        if role in RESIDUAL_READERS and n_cols > arch["hidden_size"]:
            raise c.fail(f"{at}.shape[1]", f"{n_cols} residual columns for hidden_size "
                                           f"{arch['hidden_size']}")
        rows = _positions(c, entry["rows"], f"{at}.rows", n_rows)
        cols = _positions(c, entry["cols"], f"{at}.cols", n_cols)
        expected = rows * cols
    else:
        raise c.fail(at, "a sketch entry needs 'dims' or 'rows' and 'cols'")
    if expected > MAX_SKETCH_VALUES:
        raise c.fail(at, f"{expected} values, over the limit of {MAX_SKETCH_VALUES}")
    _values(c, entry.get("values"), f"{at}.values", expected)


def _all_finite_numbers(items: list[Any], nulls: bool, limit: float) -> bool:
    """True when every item is an int or float (or None where allowed), finite and within
    ``limit``: one pass over the item types in C and one numpy pass over the values, instead
    of a Python call per item (fingerprints hold ~10^5 such numbers)."""
    kinds = set(map(type, items))
    if not kinds <= ({int, float, type(None)} if nulls else {int, float}):
        return False
    vals = [v for v in items if v is not None] if type(None) in kinds else items
    if not vals:
        return True
    try:
        arr = np.asarray(vals, dtype=np.float64)
    except OverflowError:      # an int beyond float64: the loop reports it
        return False
    return bool(np.isfinite(arr).all() and (limit == math.inf or np.abs(arr).max() <= limit))


def _positions(c: _Check, value: Any, at: str, size: int) -> int:
    """Sampled indices: strictly increasing integers below ``size``; returns their count."""
    items = c.array(value, at, min(size, MAX_SKETCH_VALUES))
    if items and set(map(type, items)) == {int} and min(items) >= 0 and max(items) < size \
            and bool((np.diff(np.asarray(items, dtype=np.int64)) > 0).all()):
        return len(items)       # checked in bulk; the loop below names a culprit
    prev = -1
    for j, v in enumerate(items):
        c.integer(v, f"{at}[{j}]", prev + 1, size - 1)
        prev = v
    return len(items)


def _values(c: _Check, value: Any, at: str, expected: int) -> None:
    text = c.text(value, at, max_len=(2 * expected + 2) // 3 * 4 + 4) or ""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise c.fail(at, "is not base64") from None
    if len(raw) != 2 * expected:
        raise c.fail(at, f"decodes to {len(raw) // 2} float16 values, the entry declares "
                         f"{expected}")
    arr = np.frombuffer(raw, dtype="<f2")
    if not np.isfinite(arr).all():
        raise c.fail(at, "holds non-finite values (NaN or Inf)")


def reject_constant(name: str) -> float:
    """``json.loads`` hook: NaN/Infinity are not JSON (the writer emits ``null``)."""
    raise ValueError(f"{name} is not a JSON number")

