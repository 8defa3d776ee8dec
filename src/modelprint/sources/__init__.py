"""Weight sources: open a MODEL reference as a lazily read :class:`ModelSource`.

``open_source`` dispatches on the reference kind: a safetensors directory or file, a GGUF
file, or an ``hf:`` hub reference. A fingerprint file (``*.fp.json``) stands in for a model
but has no weights, so it is not a source: ``modelprint.models.load_model`` handles it.
"""

from __future__ import annotations

from pathlib import Path

from modelprint.errors import ModelReferenceError
from modelprint.refs import ModelRef, parse_reference
from modelprint.sources.base import ModelSource, TensorInfo

__all__ = ["ModelSource", "TensorInfo", "open_source"]


def open_source(
    ref_or_text: ModelRef | str | Path, base_dir: str | Path | None = None,
    offline: bool | None = None,
) -> ModelSource:
    """Open a reference (parsed or as text). ``offline=None`` follows ``HF_HUB_OFFLINE``."""
    ref = ref_or_text if isinstance(ref_or_text, ModelRef) else parse_reference(
        str(ref_or_text), base_dir)
    if ref.kind in ("directory", "safetensors"):
        from modelprint.sources.safetensors import SafetensorsSource

        assert ref.path is not None
        return SafetensorsSource(ref.path, ref.text)
    if ref.kind == "gguf":
        from modelprint.sources.gguf import GGUFSource

        assert ref.path is not None
        return GGUFSource(ref.path, ref.text)
    if ref.kind == "hf":
        from modelprint.sources.hub import open_hub

        return open_hub(ref, offline=offline)
    if ref.kind == "fingerprint":
        raise ModelReferenceError(
            ref.path, "a fingerprint file has no weights to read; load it with "
            "modelprint.models.load_model")
    raise ModelReferenceError(ref.text, f"unknown reference kind {ref.kind!r}")
