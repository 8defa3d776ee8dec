"""Every cap modelprint puts on what a file may declare, in one place.

Everything modelprint reads comes from someone else -- a downloaded checkpoint, a fingerprint
handed over in a dispute, an audit file in a pull request -- so each size a file declares is
checked against these limits *before* anything is allocated from it, and a file beyond them
is refused with a one-line :class:`~modelprint.errors.InputError` naming the file and the
field. The limits sit well above the largest real models (a 1T-parameter MoE has ~60k
tensors, 61 layers, 384 experts, a 160k vocabulary) and far below what would exhaust memory.
README.md ("Hostile input") lists them for users.
"""

from __future__ import annotations

# -- JSON and YAML text ----------------------------------------------------------------------
#: Largest JSON side file (config.json, tokenizer.json, a shard index) parsed.
MAX_JSON_BYTES = 256 * 1024 * 1024
#: Deepest nesting accepted in side files (config.json, tokenizer files, headers, indexes).
MAX_JSON_DEPTH = 64
#: Largest fingerprint file read (a 70B-class model's is ~170 MB, most are a few MB).
MAX_FP_BYTES = 256 * 1024 * 1024
#: Deepest nesting of a fingerprint (the real layout is 5 levels deep).
MAX_FP_DEPTH = 16
#: Largest audit file, and its deepest nesting (real ones are < 1 kB, 4 levels deep).
MAX_AUDIT_BYTES = 256 * 1024
MAX_YAML_DEPTH = 32

# -- architecture, as config.json, GGUF metadata or a fingerprint declares it ---------------
MAX_LAYERS = 4096
MAX_HIDDEN = 1 << 20
MAX_HEADS = 1 << 16
MAX_INTERMEDIATE = 1 << 22
MAX_VOCAB = 10_000_000
MAX_EXPERTS = 1 << 16
#: Accepted range of each architecture size, by its fingerprint (``ArchInfo``) name; the
#: config.json reader and the fingerprint schema both check against this one table.
ARCH_RANGES: dict[str, tuple[int, int]] = {
    "num_layers": (0, MAX_LAYERS), "hidden_size": (1, MAX_HIDDEN),
    "num_heads": (1, MAX_HEADS), "num_kv_heads": (1, MAX_HEADS), "head_dim": (1, MAX_HEADS),
    "intermediate_size": (0, MAX_INTERMEDIATE), "vocab_size": (0, MAX_VOCAB),
    "num_experts": (0, MAX_EXPERTS),
}

# -- weight values -------------------------------------------------------------------------
#: Largest magnitude of a norm gain or bias (the float32 maximum, ~3.4e38). The checks fold
#: gains into float16 sketches and float32 weights; a gain beyond float32 would make those
#: Inf and a cosine cost matrix NaN. The fingerprint builder refuses such a model and the
#: fingerprint schema such a file, so what one writes the other reads.
MAX_VECTOR_VALUE = 3.4028234663852886e38

# -- GGUF metadata --------------------------------------------------------------------------
#: Longest GGUF metadata string (chat templates are tens of kB, tokens a few bytes).
MAX_GGUF_STRING = 16 * 1024 * 1024
#: Most elements of one GGUF metadata array (a vocabulary, its scores, merges).
MAX_GGUF_ARRAY = 16 * 1024 * 1024
