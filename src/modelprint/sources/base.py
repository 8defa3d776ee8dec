"""What every weight source offers: lazy, row-blocked access to stored tensors.

A source never materialises a whole model. Tensors are described by :class:`TensorInfo` and
read as row ranges, so a 1 GB embedding is visited in blocks of a few MB.

Values come back in the *stored* precision where numpy can hold it (float16, bfloat16 via
``ml_dtypes``, float32, float64) because exact float64 moments of 16-bit data are computed
from bit-pattern histograms; quantised GGUF types come back dequantised to float32.
Shapes are in the Hugging Face / PyTorch layout (``(out_features, in_features)`` for a
``nn.Linear`` weight; GPT-2's Conv1D weights are stored ``(in, out)`` and the arch layer
transposes them). GGUF sources undo llama.cpp's q/k row permutation themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Default size of one block of rows handed out by :meth:`ModelSource.iter_row_blocks`.
BLOCK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TensorInfo:
    """One stored tensor. ``dtype`` is the stored type name: F64 F32 F16 BF16 Q4_0 Q4_K ..."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    file: Path
    nbytes: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


class ModelSource(ABC):
    """A model's weights and repository files, opened lazily.

    Attributes set by implementations:
      reference -- the MODEL reference as the user gave it
      root      -- the repository directory (license/readme files live here), or None
      revision  -- resolved commit for hub models, else None
    """

    reference: str
    root: Path | None = None
    revision: str | None = None

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """HF-style config dict. GGUF sources synthesise one from metadata: ``model_type``
        (from ``general.architecture``), ``num_hidden_layers``, ``hidden_size``,
        ``num_attention_heads``, ``num_key_value_heads``, ``intermediate_size``,
        ``vocab_size``, ``head_dim``, ``num_local_experts`` where known."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """Free-form metadata: GGUF key/values (strings, numbers; no big arrays) or the
        safetensors ``__metadata__``. Untrusted text."""

    @abstractmethod
    def tensors(self) -> dict[str, TensorInfo]:
        """Every stored tensor by its stored name, in file order."""

    @abstractmethod
    def read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` along axis 0, shape ``(stop-start, *shape[1:])``."""

    def read_row_set(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, repeats allowed) along axis 0, one call per contiguous run.
        Sources that can decode scattered rows at once (GGUF) override it: a sample of 1024
        embedding rows is then one decode instead of a thousand."""
        pieces = []
        run_start = 0
        for k in range(1, len(rows) + 1):
            if k == len(rows) or rows[k] != rows[k - 1] + 1:
                lo, hi = int(rows[run_start]), int(rows[k - 1]) + 1
                pieces.append(np.asarray(self.read_rows(name, lo, hi), dtype=np.float32))
                run_start = k
        return np.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]

    @abstractmethod
    def iter_raw_bytes(self, name: str) -> Iterator[memoryview]:
        """The tensor's stored bytes in chunks (for sha256), exactly as on disk."""

    @abstractmethod
    def weight_files(self) -> list[Path]:
        """The weight files backing this model (each gets a sha256 in the fingerprint)."""

    def repo_files(self) -> list[Path]:
        """Non-weight files of the repository (license, readme, notice, *.py, configs)."""
        return []

    def vocabulary(self) -> list[str] | None:
        """Token strings by id (tokenizer.json / vocab.txt / GGUF tokenizer.ggml.tokens)."""
        return None

    def iter_row_blocks(
        self, name: str, block_bytes: int = BLOCK_BYTES
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(first_row, block)`` pairs covering the tensor in order, each about
        ``block_bytes`` of float32 at most, so memory stays flat whatever the size."""
        info = self.tensors()[name]
        rows = info.rows
        per_row = max(1, info.numel // max(rows, 1)) * 4
        step = max(1, block_bytes // per_row)
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            yield start, self.read_rows(name, start, stop)

    def release_pages(self) -> None:  # noqa: B027 - optional hook
        """Let the OS drop the resident pages of memory-mapped files (they are re-read from
        the page cache on next access). A streaming pass calls this every few hundred MB so
        its RSS stays flat: mapped pages once touched otherwise count until unmapped."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release memory maps and file handles."""

    def __enter__(self) -> ModelSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
