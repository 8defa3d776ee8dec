"""GGUF files (llama.cpp): dequantised, un-permuted, in Hugging Face row order.

Tensor names stay GGUF names (``blk.0.attn_q.weight``) and ``config()["_naming"] == "gguf"``
tells the arch layer so. Shapes are reported row-major (GGUF lists dimensions innermost
first). Quantised types are dequantised one row block at a time with the ``gguf`` package's
decoders (``_dequant``; every GGML row is a whole number of quant blocks, so any row range
decodes on its own); float types come back in their stored precision.

llama.cpp's converter reorders the rows of ``q_proj``/``k_proj`` (weights and biases) for the
architectures whose rotary embedding it evaluates on interleaved pairs
(``LlamaModel.permute``: per head, ``reshape(2, head_dim/2).swapaxes``). We undo that so
rows match the Hugging Face layout, also for a row range that cuts through a head.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from modelprint.errors import ModelFileError
from modelprint.sources._dequant import dequantize_rows
from modelprint.sources._files import DOC_PATTERNS, list_repo_files
from modelprint.sources._ggufparse import (
    GGUFHeader,
    GGUFTensor,
    header_from_memo,
    header_to_memo,
    parse_header,
)
from modelprint.sources.base import ModelSource, TensorInfo

#: ``general.architecture`` values whose llama.cpp converter permutes q/k rows: LlamaModel
#: (llama, mistral and mixtral checkpoints all convert to "llama") and its subclasses that
#: keep ``undo_permute = True``. Qwen2/3, Gemma*, Phi-3, GPT-2, BERT, NeoX, DeepSeek-V2 and
#: Llama 4 are written in Hugging Face order.
PERMUTED_ARCHS = frozenset({
    "llama", "arcee", "llama-embed", "smollm3", "granite", "granitemoe", "granitehybrid",
    "llada",
})

_PLAIN: dict[GGMLQuantizationType, np.dtype[Any]] = {
    GGMLQuantizationType.F32: np.dtype("<f4"),
    GGMLQuantizationType.F16: np.dtype("<f2"),
    GGMLQuantizationType.BF16: np.dtype(ml_dtypes.bfloat16),
    GGMLQuantizationType.F64: np.dtype("<f8"),
    GGMLQuantizationType.I8: np.dtype("i1"),
    GGMLQuantizationType.I16: np.dtype("<i2"),
    GGMLQuantizationType.I32: np.dtype("<i4"),
    GGMLQuantizationType.I64: np.dtype("<i8"),
}
_QK = re.compile(r"^blk\.(\d+)\.attn_([qk])\.(weight|bias)$")
RAW_CHUNK = 16 * 1024 * 1024


def _header(view: memoryview, path: Path) -> GGUFHeader:
    """The file's header, from the memo when the file is unchanged since it was parsed (the
    remembered tensor table is checked against the file again), else parsed and remembered."""
    from modelprint import memo

    try:
        key = memo.file_signature(path)[1]
    except OSError:
        return parse_header(view, path)
    header = header_from_memo(memo.load_json("gguf-header", key), view, path)
    if header is None:
        header = parse_header(view, path)
        memo.store_json("gguf-header", key, header_to_memo(header))
    return header


class GGUFSource(ModelSource):
    """One ``*.gguf`` file."""

    def __init__(self, path: Path, reference: str | None = None) -> None:
        self.path = Path(path)
        self.reference = reference if reference is not None else str(path)
        self.root = self.path.parent
        try:
            with open(self.path, "rb") as fh:
                if self.path.stat().st_size == 0:
                    raise ModelFileError(self.path, "empty file, not a GGUF model")
                self._mm: mmap.mmap | None = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ModelFileError(self.path, f"cannot read: {exc.strerror or exc}") from None
        self._data = np.frombuffer(self._mm, dtype=np.uint8)
        view = memoryview(self._mm)
        try:
            self.header: GGUFHeader = _header(view, self.path)
        finally:
            view.release()
        fields = self.header.fields
        splits = fields.get("split.count", 1)
        if isinstance(splits, int) and splits > 1:
            raise ModelFileError(
                self.path, f"part of a GGUF split into {splits} files; merge it first "
                "(llama-gguf-split --merge) and pass the merged file")
        arch = fields.get("general.architecture")
        if not isinstance(arch, str) or not arch:
            raise ModelFileError(self.path, "no general.architecture in the GGUF metadata")
        self.arch = arch
        self._tensors: dict[str, GGUFTensor] = {t.name: t for t in self.header.tensors}
        self._info = {
            t.name: TensorInfo(t.name, t.shape, t.qtype.name, self.path, t.nbytes)
            for t in sorted(self.header.tensors, key=lambda t: t.offset)
        }

    # -- metadata -----------------------------------------------------------------------
    def _arch_value(self, key: str) -> Any:
        return self.header.fields.get(f"{self.arch}.{key}")

    def _heads(self, key: str, layer: int) -> int | None:
        """Head counts may be per-layer arrays in GGUF; pick the layer's value."""
        value = self._arch_value(key)
        if isinstance(value, list):
            value = value[layer] if 0 <= layer < len(value) else None
        return int(value) if isinstance(value, (int, float)) and value > 0 else None

    def config(self) -> dict[str, Any]:
        f = self.header.fields
        cfg: dict[str, Any] = {"model_type": self.arch, "_naming": "gguf"}

        def put(name: str, key: str, reduce_list: bool = True) -> None:
            value = self._arch_value(key)
            if isinstance(value, list) and reduce_list:
                value = max(value) if value else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cfg[name] = value

        put("num_hidden_layers", "block_count")
        put("hidden_size", "embedding_length")
        put("num_attention_heads", "attention.head_count")
        put("num_key_value_heads", "attention.head_count_kv")
        put("intermediate_size", "feed_forward_length")
        put("head_dim", "attention.key_length")
        put("num_local_experts", "expert_count")
        put("num_experts_per_tok", "expert_used_count")
        put("moe_intermediate_size", "expert_feed_forward_length")
        put("max_position_embeddings", "context_length")
        put("rope_theta", "rope.freq_base")
        put("rms_norm_eps", "attention.layer_norm_rms_epsilon")
        put("layer_norm_eps", "attention.layer_norm_epsilon")
        if "num_attention_heads" in cfg and "num_key_value_heads" not in cfg:
            cfg["num_key_value_heads"] = cfg["num_attention_heads"]
        if "head_dim" not in cfg and cfg.get("num_attention_heads") and cfg.get("hidden_size"):
            cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
        tokens = f.get("tokenizer.ggml.tokens")
        if isinstance(tokens, list) and tokens:
            cfg["vocab_size"] = len(tokens)
        elif isinstance(self._arch_value("vocab_size"), int):
            cfg["vocab_size"] = self._arch_value("vocab_size")
        elif "token_embd.weight" in self._tensors:
            cfg["vocab_size"] = self._tensors["token_embd.weight"].shape[0]
        cfg["tie_word_embeddings"] = "output.weight" not in self._tensors
        cfg["_qk_unpermuted"] = self.arch in PERMUTED_ARCHS
        return cfg

    def metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.header.fields.items() if k != "tokenizer.ggml.tokens"}

    def vocabulary(self) -> list[str] | None:
        tokens = self.header.fields.get("tokenizer.ggml.tokens")
        return list(tokens) if isinstance(tokens, list) else None

    def tensors(self) -> dict[str, TensorInfo]:
        return dict(self._info)

    def weight_files(self) -> list[Path]:
        return [self.path]

    def repo_files(self) -> list[Path]:
        folder = self.path.parent
        return list_repo_files(folder, folder, DOC_PATTERNS, max_depth=1)

    # -- data ---------------------------------------------------------------------------
    def _tensor(self, name: str) -> GGUFTensor:
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError(f"{self.reference}: no tensor named {name!r}") from None

    def _stored_rows(self, t: GGUFTensor, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` in stored (possibly permuted) order, decoded."""
        shape = t.shape or (1,)
        rows = shape[0]
        start, stop = max(0, min(start, rows)), max(0, min(stop, rows))
        stop = max(start, stop)
        n = stop - start
        numel_row = 1
        for s in shape[1:]:
            numel_row *= s
        block, tsize = GGML_QUANT_SIZES[t.qtype]
        plain = _PLAIN.get(t.qtype)
        if plain is None and numel_row % block:
            # a 1-D quantised vector: blocks span rows, decode it whole (it is small)
            return self._decode(t, self._data[t.offset:t.offset + t.nbytes], shape)[start:stop]
        row_bytes = numel_row // block * tsize
        raw = self._data[t.offset + start * row_bytes:t.offset + stop * row_bytes]
        out_shape = (n, *shape[1:])
        if plain is not None:
            return raw.view(plain).reshape(out_shape)
        return self._decode(t, raw, out_shape)

    def _decode(self, t: GGUFTensor, raw: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        block, tsize = GGML_QUANT_SIZES[t.qtype]
        inner = t.dims[0] if t.dims else 1
        try:
            values = dequantize_rows(raw.reshape(-1, inner // block * tsize), t.qtype)
        except NotImplementedError:
            raise ModelFileError(
                self.path, f"tensor {t.name!r}: GGML type {t.qtype.name} cannot be dequantised "
                "by the installed gguf package") from None
        except (ValueError, IndexError, TypeError) as exc:
            raise ModelFileError(self.path, f"tensor {t.name!r}: cannot decode ({exc})") from None
        return np.asarray(values, dtype=np.float32).reshape(out_shape)

    def _head_rows(self, name: str, rows: int) -> int | None:
        """Rows per head when ``name`` is a q/k tensor stored permuted, else None."""
        m = _QK.match(name)
        if m is None or self.arch not in PERMUTED_ARCHS:
            return None
        layer = int(m.group(1))
        heads = self._heads("attention.head_count", layer)
        if m.group(2) == "k":
            heads = self._heads("attention.head_count_kv", layer) or heads
        if not heads or rows % heads or (rows // heads) % 2:
            raise ModelFileError(
                self.path, f"tensor {name!r}: {rows} rows do not split into {heads} heads of "
                "even size, cannot undo llama.cpp's q/k permutation")
        return rows // heads

    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        t = self._tensor(name)
        shape = t.shape or (1,)
        hd = self._head_rows(name, shape[0])
        if hd is None:
            return self._stored_rows(t, start, stop)
        hf_rows = np.arange(max(0, start), min(stop, shape[0]))
        if hf_rows.size == 0:
            return self._stored_rows(t, 0, 0)
        # HF row h*hd + j*hd/2 + i is stored at GGUF row h*hd + 2*i + j
        half = hd // 2
        head, rem = np.divmod(hf_rows, hd)
        j, i = np.divmod(rem, half)
        stored = head * hd + 2 * i + j
        lo, hi = int(stored.min()), int(stored.max()) + 1
        block = self._stored_rows(t, lo, hi)
        return np.ascontiguousarray(block[stored - lo])

    def read_row_set(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Scattered rows in one gather and one decode (rows are whole quant blocks)."""
        t = self._tensor(name)
        shape = t.shape or (1,)
        rows = np.asarray(rows, dtype=np.int64)
        numel_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        block, tsize = GGML_QUANT_SIZES[t.qtype]
        if (self._head_rows(name, shape[0]) is not None or len(shape) < 2 or numel_row % block
                or rows.size == 0 or rows.min() < 0 or rows.max() >= shape[0]):
            return super().read_row_set(name, rows)
        row_bytes = numel_row // block * tsize
        table = self._data[t.offset:t.offset + shape[0] * row_bytes].reshape(shape[0], row_bytes)
        raw = table[rows]
        plain = _PLAIN.get(t.qtype)
        out_shape = (len(rows), *shape[1:])
        if plain is not None:
            return raw.view(plain).reshape(out_shape)
        return self._decode(t, raw, out_shape)

    def iter_raw_bytes(self, name: str) -> Iterator[memoryview]:
        t = self._tensor(name)
        for i in range(t.offset, t.offset + t.nbytes, RAW_CHUNK):
            yield self._data[i:min(i + RAW_CHUNK, t.offset + t.nbytes)].data

    def release_pages(self) -> None:
        if self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        """Drop our references; the map is released once handed-out views are gone."""
        self._mm = None
