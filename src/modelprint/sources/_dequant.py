"""GGML dequantisation with the ``gguf`` package's decoders, in row groups of ~256 KB.

``gguf.quants.dequantize`` decodes an array 16 rows at a time (``_apply_over_grouped_rows``),
and each group costs some twenty small numpy operations whatever its size: on Gemma 3 270M's
tensors that overhead is ~80 % of the time (measured here: 2.8-4.2 s for the whole model
against 0.5-0.7 s in 256 KB groups). We call the same per-type decoder,
``gguf.quants.<TYPE>.dequantize_rows``, on groups of rows holding ~256 KB of quantised bytes
instead: the values are bit-identical (each GGML block decodes on its own), the temporary
arrays stay a few MB, and the package stays the single implementation of every format.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType

#: Quantised bytes per decoder call: large enough to amortise the per-call numpy overhead,
#: small enough that the decoder's float32 temporaries stay in cache-sized pieces.
GROUP_BYTES = 256 * 1024


def _decoder(qtype: GGMLQuantizationType) -> Any | None:
    """The package's quant class for ``qtype`` (named like the enum member), if it has one."""
    cls = getattr(quants, qtype.name, None)
    if cls is None or getattr(cls, "qtype", None) != qtype or not hasattr(cls, "dequantize_rows"):
        return None
    return cls


def dequantize_rows(raw: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """float32 values of ``raw`` (uint8, one quantised row per row), shape (rows, values).

    Raises ``NotImplementedError`` for a type the installed ``gguf`` cannot decode, like
    ``gguf.quants.dequantize``.
    """
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if raw.ndim != 2:
        raw = raw.reshape(-1, raw.shape[-1])
    cls = _decoder(qtype)
    if cls is None:  # a type decoded by another path in the package (or none at all)
        values = quants.dequantize(raw, qtype)
        return np.asarray(values, dtype=np.float32).reshape(raw.shape[0], -1)
    cls.init_grid()  # lookup tables of the IQ types, built once per class
    rows, row_bytes = raw.shape
    step = max(1, GROUP_BYTES // max(1, row_bytes))
    if rows <= step:
        return np.asarray(cls.dequantize_rows(raw), dtype=np.float32)
    first = cls.dequantize_rows(raw[:step])
    out = np.empty((rows, first.shape[1]), dtype=np.float32)
    out[:step] = first
    for i in range(step, rows, step):
        out[i:i + step] = cls.dequantize_rows(raw[i:i + step])
    return out
