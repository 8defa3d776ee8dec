"""GGUF sources: header parsing, dequantisation, q/k un-permutation, real models, bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from modelprint.errors import ModelFileError
from modelprint.sources import ModelSource, open_source
from modelprint.sources.gguf import GGUFSource

HEADS, KV_HEADS, HEAD_DIM, HIDDEN = 4, 2, 8, 32


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter (LlamaModel.permute), written out independently: per head the
    rows are regrouped as (2, head_dim/2) -> (head_dim/2, 2)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(path: Path, arch: str, tensors: dict[str, tuple[np.ndarray, Q]], *,
               tokens: list[str] | None = None, layers: int = 1) -> Path:
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_feed_forward_length(64)
    w.add_context_length(128)
    w.add_string("general.name", "tiny test model")
    if tokens is not None:
        w.add_token_list(tokens)
    for name, (arr, qtype) in tensors.items():
        if qtype in (Q.F32, Q.F16):
            w.add_tensor(name, arr.astype(np.float32 if qtype == Q.F32 else np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr.astype(np.float32), qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _rand(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _read_all(src: ModelSource, name: str, step: int) -> np.ndarray:
    rows = src.tensors()[name].rows
    return np.concatenate([src.read_rows(name, a, min(rows, a + step))
                           for a in range(0, rows, step)])


def test_parser_agrees_with_gguf_reader(tmp_path: Path) -> None:
    f = write_gguf(tmp_path / "m.gguf", "qwen2", {
        "token_embd.weight": (_rand((16, HIDDEN)), Q.Q8_0),
        "blk.0.attn_norm.weight": (_rand((HIDDEN,)), Q.F32),
        "blk.0.ffn_up.weight": (_rand((64, HIDDEN), 1), Q.Q4_0),
        "blk.0.ffn_down.weight": (_rand((HIDDEN, 64), 2), Q.F16),
    }, tokens=[f"t{i}" for i in range(16)])
    src = GGUFSource(f)
    reader = gguf.GGUFReader(f)
    assert [t.name for t in reader.tensors] == list(src.tensors())
    for t in reader.tensors:
        info = src.tensors()[t.name]
        assert info.shape == tuple(reversed(t.shape.tolist()))
        assert info.dtype == t.tensor_type.name and info.nbytes == t.n_bytes
        raw = b"".join(bytes(m) for m in src.iter_raw_bytes(t.name))
        assert raw == t.data.tobytes()
    assert src.metadata()["general.name"] == "tiny test model"
    assert src.vocabulary() == [f"t{i}" for i in range(16)]


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.F16, Q.F32, Q.BF16])
def test_dequantised_rows_match_the_original(tmp_path: Path, qtype: Q) -> None:
    w = _rand((24, 64), 3)
    f = write_gguf(tmp_path / "m.gguf", "qwen2", {"blk.0.ffn_up.weight": (w, qtype)})
    src = GGUFSource(f)
    got = _read_all(src, "blk.0.ffn_up.weight", step=5)
    assert got.shape == w.shape
    # every block of 32 values: the error is bounded by the format's step for that block's
    # largest magnitude (half a step when rounding; a whole step where Q4_0/Q5_0 clip the
    # side opposite the extreme value), plus the f16 rounding of the block scale
    amax = np.abs(w).reshape(-1, 32).max(axis=1, keepdims=True).astype(np.float64)
    err = np.abs(got.astype(np.float64) - w).reshape(-1, 32)
    step = {Q.Q8_0: 1 / 254, Q.Q4_0: 1 / 8, Q.Q4_1: 1 / 15, Q.Q5_0: 1 / 16,
            Q.F16: 2.0**-11, Q.F32: 0.0, Q.BF16: 2.0**-8}[qtype]
    scale_rounding = 1e-3 if step > 2.0**-8 else 0.0
    assert np.all(err <= amax * (step + scale_rounding))
    assert np.corrcoef(got.ravel().astype(np.float64), w.ravel())[0, 1] > 0.9
    if qtype in (Q.F16, Q.BF16, Q.F32):
        assert got.dtype.itemsize == {Q.F16: 2, Q.BF16: 2, Q.F32: 4}[qtype]  # stored precision


@pytest.mark.parametrize("step", [1, 3, 8, 13, 64])
def test_llama_qk_rows_are_unpermuted(tmp_path: Path, step: int) -> None:
    q_hf = _rand((HEADS * HEAD_DIM, HIDDEN), 4)
    k_hf = _rand((KV_HEADS * HEAD_DIM, HIDDEN), 5)
    qb_hf = _rand((HEADS * HEAD_DIM,), 6)
    v = _rand((KV_HEADS * HEAD_DIM, HIDDEN), 7)
    f = write_gguf(tmp_path / "llama.gguf", "llama", {
        "blk.0.attn_q.weight": (llama_permute(q_hf, HEADS), Q.F32),
        "blk.0.attn_k.weight": (llama_permute(k_hf, KV_HEADS), Q.F32),
        "blk.0.attn_q.bias": (llama_permute(qb_hf, HEADS), Q.F32),
        "blk.0.attn_v.weight": (v, Q.F32),
    })
    src = GGUFSource(f)
    assert np.array_equal(_read_all(src, "blk.0.attn_q.weight", step), q_hf)
    assert np.array_equal(_read_all(src, "blk.0.attn_k.weight", step), k_hf)
    assert np.array_equal(_read_all(src, "blk.0.attn_q.bias", step), qb_hf)
    assert np.array_equal(_read_all(src, "blk.0.attn_v.weight", step), v)
    # a range cutting through a head
    assert np.array_equal(src.read_rows("blk.0.attn_q.weight", 5, 19), q_hf[5:19])
    assert src.config()["_naming"] == "gguf"


def test_quantised_llama_qk_unpermute(tmp_path: Path) -> None:
    k_hf = _rand((KV_HEADS * HEAD_DIM, HIDDEN), 8)
    stored = llama_permute(k_hf, KV_HEADS)
    f = write_gguf(tmp_path / "llama.gguf", "llama", {"blk.0.attn_k.weight": (stored, Q.Q8_0)})
    deq = gguf.quants.dequantize(gguf.quants.quantize(stored, Q.Q8_0), Q.Q8_0)
    got = _read_all(GGUFSource(f), "blk.0.attn_k.weight", 7)
    assert np.array_equal(llama_permute(got, KV_HEADS), deq)  # exactly the stored values
    assert np.abs(got - k_hf).max() < np.abs(k_hf).max() / 100  # in HF row order


def test_non_llama_archs_are_not_unpermuted(tmp_path: Path) -> None:
    q = _rand((HEADS * HEAD_DIM, HIDDEN), 9)
    f = write_gguf(tmp_path / "qwen.gguf", "qwen2", {"blk.0.attn_q.weight": (q, Q.F32)})
    assert np.array_equal(_read_all(GGUFSource(f), "blk.0.attn_q.weight", 5), q)


def test_config_is_synthesised_from_metadata(tmp_path: Path) -> None:
    f = write_gguf(tmp_path / "m.gguf", "llama", {
        "token_embd.weight": (_rand((10, HIDDEN)), Q.F32),
        "blk.0.attn_norm.weight": (_rand((HIDDEN,)), Q.F32),
    }, tokens=[str(i) for i in range(10)], layers=3)
    cfg = open_source(str(f)).config()
    assert cfg["model_type"] == "llama" and cfg["_naming"] == "gguf"
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], cfg["intermediate_size"], cfg["vocab_size"],
            cfg["head_dim"]) == (3, HIDDEN, HEADS, KV_HEADS, 64, 10, HIDDEN // HEADS)
    assert cfg["tie_word_embeddings"] is True


# -- bad files ----------------------------------------------------------------------------

def _bad(path: Path) -> str:
    with pytest.raises(ModelFileError) as exc:
        GGUFSource(path)
    msg = str(exc.value)
    assert "\n" not in msg and path.name in msg
    return msg


def test_truncated_gguf(tmp_path: Path) -> None:
    f = write_gguf(tmp_path / "m.gguf", "qwen2", {"blk.0.ffn_up.weight": (_rand((64, 64)), Q.F32)})
    data = f.read_bytes()
    f.write_bytes(data[:-100])
    assert "truncated" in _bad(f)
    f.write_bytes(data[:40])
    assert "truncated" in _bad(f)


def test_string_arrays_read_exactly_and_cut_ones_refused(tmp_path: Path) -> None:
    """The vocabulary (kept) and a long string array (skipped: over SMALL_ARRAY entries) are
    walked in one loop: tokens come back as written, non-ASCII included; a file cut inside
    either array, or a string length pointing past the end, is a one-line "truncated"."""
    tokens = [f"t{i}" for i in range(200)] + ["▁é", "Ġworld", "<0x0A>", "日本", ""]
    w = gguf.GGUFWriter(str(tmp_path / "v.gguf"), "qwen2")
    w.add_block_count(1)
    w.add_token_list(tokens)
    w.add_token_merges([f"t{i} t{i + 1}" for i in range(199)])
    w.add_tensor("blk.0.ffn_up.weight", _rand((64, 64)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    f = tmp_path / "v.gguf"
    assert GGUFSource(f).vocabulary() == tokens
    data = f.read_bytes()
    in_tokens = data.index(b"t150")
    in_merges = data.index(b"t150 t151")
    f.write_bytes(data[:in_tokens + 2])
    assert "truncated" in _bad(f) and "tokenizer.ggml.tokens" in _bad(f)
    f.write_bytes(data[:in_merges + 2])
    assert "truncated" in _bad(f) and "tokenizer.ggml.merges" in _bad(f)
    length_at = in_tokens - 8  # the length field of "t150"
    for declared, words in ((2**62, "over the 16777216 byte limit"), (1 << 20, "truncated")):
        hostile = data[:length_at] + struct.pack("<Q", declared) + data[length_at + 8:]
        f.write_bytes(hostile)
        assert words in _bad(f) and "tokenizer.ggml.tokens" in _bad(f)


def test_not_a_gguf(tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(b"PK\x03\x04" + bytes(100))
    assert "magic" in _bad(f)
    f.write_bytes(b"")
    assert "empty" in _bad(f)
    f.write_bytes(b"GGUF" + struct.pack("<I", 1) + bytes(16))
    assert "version" in _bad(f)


def test_hostile_counts_and_types(tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0))
    assert "implausible" in _bad(f)
    # one tensor of an unknown GGML type
    name = b"w"
    body = (struct.pack("<IQQ", 3, 1, 0) + struct.pack("<Q", len(name)) + name
            + struct.pack("<I", 1) + struct.pack("<Q", 32) + struct.pack("<I", 999)
            + struct.pack("<Q", 0))
    f.write_bytes(b"GGUF" + body + bytes(256))
    assert "unknown GGML type" in _bad(f)


def test_gguf_missing_architecture(tmp_path: Path) -> None:
    f = tmp_path / "x.gguf"
    f.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    assert "general.architecture" in _bad(f)


# -- the real models ----------------------------------------------------------------------

def test_smollm2_real(smollm2_gguf: Path) -> None:
    src = open_source(str(smollm2_gguf))
    cfg = src.config()
    assert cfg["model_type"] == "llama"
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], cfg["head_dim"]) == (30, 576, 9, 3, 64)
    infos = src.tensors()
    assert infos["blk.0.ffn_up.weight"].dtype == "Q4_1"
    assert infos["blk.0.ffn_up.weight"].shape == (1536, 576)
    assert infos["token_embd.weight"].dtype == "Q8_0"
    # independent computation: the gguf package's reader, dequantised whole, un-permuted per
    # head with reshape/swapaxes (the inverse of the converter's permute)
    reader = gguf.GGUFReader(smollm2_gguf)
    stored = {t.name: t for t in reader.tensors}
    for name, heads in [("blk.3.attn_q.weight", 9), ("blk.3.attn_k.weight", 3),
                        ("blk.3.ffn_up.weight", None)]:
        t = stored[name]
        full = gguf.quants.dequantize(t.data, t.tensor_type)
        if heads:
            hd = full.shape[0] // heads
            full = full.reshape(heads, hd // 2, 2, -1).swapaxes(1, 2).reshape(full.shape)
            assert np.array_equal(llama_permute(full, heads), gguf.quants.dequantize(
                t.data, t.tensor_type))
        assert np.array_equal(_read_all(src, name, 50), full), name
    emb = src.read_rows("token_embd.weight", 1000, 1010)
    t = stored["token_embd.weight"]
    assert np.array_equal(emb, gguf.quants.dequantize(t.data[1000:1010], t.tensor_type))
    assert len(src.vocabulary() or []) == 49152


def test_gemma3_real(gemma3_gguf: Path) -> None:
    src = open_source(str(gemma3_gguf))
    cfg = src.config()
    assert cfg["model_type"] == "gemma3"
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
            cfg["num_key_value_heads"], cfg["head_dim"]) == (18, 640, 4, 1, 256)
    infos = src.tensors()
    kinds = {i.dtype for i in infos.values()}
    assert {"Q4_K", "Q6_K", "Q5_0", "Q8_0", "F32"} <= kinds
    for dtype in ("Q4_K", "Q6_K", "Q5_0"):
        name = next(n for n, i in infos.items() if i.dtype == dtype and n.startswith("blk.1."))
        whole = src.read_rows(name, 0, infos[name].rows)
        assert whole.shape == infos[name].shape and np.isfinite(whole).all()
        assert 0 < float(whole.std()) < 1
        assert np.array_equal(_read_all(src, name, 37), whole)
    q = src.read_rows("blk.0.attn_q.weight", 0, 1024)
    # not permuted for gemma3: q rows are read exactly as stored
    raw = np.frombuffer(b"".join(bytes(m) for m in src.iter_raw_bytes("blk.0.attn_q.weight")),
                        np.uint8).reshape(1024, -1)
    assert np.array_equal(q, gguf.quants.dequantize(raw, Q.Q5_0))


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q5_0, Q.F16, Q.BF16, Q.F32])
def test_scattered_rows_are_gathered_in_one_decode_and_equal_row_by_row(
        tmp_path: Path, qtype: Q) -> None:
    """The embedding sketch reads ~1000 scattered rows: one gather + one decode must give
    exactly what reading them one by one gives (repeats and the last row included)."""
    w = _rand((40, 256), 11)
    f = write_gguf(tmp_path / "m.gguf", "qwen2", {"token_embd.weight": (w, qtype)})
    src = GGUFSource(f)
    rows = np.array([0, 3, 3, 4, 17, 38, 39])
    one_by_one = np.concatenate([src.read_rows("token_embd.weight", int(r), int(r) + 1)
                                 for r in rows])
    np.testing.assert_array_equal(src.read_row_set("token_embd.weight", rows), one_by_one)


def test_permuted_qk_rows_take_the_run_by_run_path(tmp_path: Path) -> None:
    q_hf = _rand((HEADS * HEAD_DIM, HIDDEN), 4)
    f = write_gguf(tmp_path / "m.gguf", "llama", {"blk.0.attn_q.weight": (
        llama_permute(q_hf, HEADS), Q.F32)})
    src = GGUFSource(f)
    rows = np.array([1, 2, 9, 30])
    np.testing.assert_array_equal(src.read_row_set("blk.0.attn_q.weight", rows), q_hf[rows])


@pytest.mark.real
def test_scattered_rows_of_real_k_quants(gemma3_gguf: Path) -> None:
    """Gemma 3's K-quantised tensors (which gguf can decode but not encode)."""
    src = GGUFSource(gemma3_gguf)
    rows = np.array([0, 5, 5, 300, 639])  # within the 640 rows of ffn_down
    for name, info in src.tensors().items():
        if len(info.shape) == 2 and name in ("token_embd.weight", "blk.0.ffn_up.weight",
                                             "blk.0.ffn_down.weight"):
            one = np.concatenate([src.read_rows(name, int(r), int(r) + 1) for r in rows])
            np.testing.assert_array_equal(src.read_row_set(name, rows), one)


QUANTISED = [q for q in Q if q not in (Q.F32, Q.F16, Q.BF16, Q.F64, Q.I8, Q.I16, Q.I32, Q.I64)
             and q in gguf.constants.GGML_QUANT_SIZES]


@pytest.mark.parametrize("qtype", QUANTISED, ids=lambda q: q.name)
def test_grouped_dequantisation_is_bit_identical_to_the_gguf_package(
        qtype: Q, monkeypatch: pytest.MonkeyPatch) -> None:
    with np.errstate(all="ignore"):
        _check_grouped_dequantisation(qtype, monkeypatch)


def _check_grouped_dequantisation(qtype: Q, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups (many of them: a tiny group size) decode exactly like
    gguf.quants.dequantize, for every GGML type the installed package knows; random bytes
    stand for quantised data (NaN where a random scale is one, in both)."""
    from modelprint.sources import _dequant

    block, tsize = gguf.constants.GGML_QUANT_SIZES[qtype]
    raw = np.random.default_rng(int(qtype)).integers(0, 256, size=(37, 3 * tsize), dtype=np.uint8)
    try:
        expected = gguf.quants.dequantize(raw, qtype)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            _dequant.dequantize_rows(raw, qtype)
        return
    monkeypatch.setattr(_dequant, "GROUP_BYTES", 5 * tsize)  # under 2 rows: one row a group
    got = _dequant.dequantize_rows(raw, qtype)
    assert got.dtype == np.float32 and got.shape == (37, 3 * block)
    assert np.array_equal(got, np.asarray(expected).reshape(37, -1), equal_nan=True)
    monkeypatch.setattr(_dequant, "GROUP_BYTES", 10 * 3 * tsize)  # 10 rows per group
    assert np.array_equal(_dequant.dequantize_rows(raw, qtype), got, equal_nan=True)


def test_a_remembered_header_is_exactly_a_fresh_parse_and_never_stale(tmp_path: Path) -> None:
    """The parsed header is remembered per file (modelprint.memo, ``gguf-header``); a second
    open reads it, but only while the file's header bytes are the ones it was parsed from."""
    import json

    from modelprint import memo
    from modelprint.sources._ggufparse import parse_header
    from tests.synth import make_gguf

    path = make_gguf(tmp_path, "llama", "Q8_0").path
    first = GGUFSource(path)
    key = memo.file_signature(path)[1]
    entry = memo._path("gguf-header", key)
    assert entry.is_file()
    second = GGUFSource(path)
    fresh = parse_header(memoryview(path.read_bytes()), path)
    for h in (first.header, second.header):
        assert h.fields == fresh.fields and h.tensors == fresh.tensors
        assert (h.data_offset, h.alignment, h.version) == (fresh.data_offset, fresh.alignment,
                                                           fresh.version)
    assert second.vocabulary() == first.vocabulary()
    # a memo whose tensor table points outside the file is not used: the file is parsed again
    data = json.loads(entry.read_text())
    data["tensors"][0][3] = 1 << 40
    entry.write_text(json.dumps(data))
    assert GGUFSource(path).header.tensors == fresh.tensors
    # nor after the file was rewritten with the same size and mtime (the signature cannot
    # tell; the digest of the header bytes can)
    st = path.stat()
    raw = bytearray(path.read_bytes())
    at = raw.index(b"synthetic llama")
    raw[at:at + 15] = b"synthetic LLAMA"     # a metadata value: same size, other header
    path.write_bytes(bytes(raw))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert memo.file_signature(path)[1] == key
    assert GGUFSource(path).header.fields["general.name"] == "synthetic LLAMA"
