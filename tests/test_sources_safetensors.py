"""safetensors sources: exact reads in every dtype, sharding, side files, hostile files."""

from __future__ import annotations

import json
import os
import struct
import tracemalloc
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from modelprint.errors import InputError, ModelFileError
from modelprint.sources import open_source
from modelprint.sources.safetensors import SafetensorsSource


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "f32": torch.randn(7, 5, generator=g),
        "f16": torch.randn(6, 3, generator=g).half(),
        "bf16": torch.randn(9, 4, 2, generator=g).bfloat16(),
        "f64": torch.randn(3, 3, generator=g).double(),
        "i64": torch.arange(10, dtype=torch.int64) - 5,
        "i32": torch.arange(12, dtype=torch.int32).reshape(4, 3),
        "i8": torch.arange(-4, 4, dtype=torch.int8),
        "u8": torch.arange(0, 250, 25, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }


def _as_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _model(path: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    if shards == 1:
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        return path
    names = list(tensors)
    weight_map = {}
    for k in range(shards):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[k::shards]}
        save_file(part, str(path / fname))
        weight_map.update({n: fname for n in part})
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return path


def _raw(path: Path, header: dict | bytes, data: bytes, length: int | None = None) -> Path:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(body) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + body + data)
    return path


def _error(path: Path, exc_type: type[InputError] = ModelFileError) -> str:
    with pytest.raises(exc_type) as exc:
        SafetensorsSource(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert path.name in msg
    return msg


def test_rows_equal_the_full_tensor_in_every_dtype(tmp_path: Path) -> None:
    tensors = _tensors()
    src = SafetensorsSource(_model(tmp_path / "m", tensors))
    infos = src.tensors()
    assert set(infos) == set(tensors)
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as ref:
        for name, t in tensors.items():
            want = _as_numpy(ref.get_tensor(name))
            info = infos[name]
            assert info.shape == tuple(t.shape)
            assert info.nbytes == want.nbytes
            rows = info.rows
            got = np.concatenate([src.read_rows(name, a, min(a + 2, rows))
                                  for a in range(0, rows, 2)] or [src.read_rows(name, 0, 0)])
            assert got.dtype == want.dtype, name
            assert np.array_equal(got.reshape(want.shape), want), name
            blocks = list(src.iter_row_blocks(name, block_bytes=16))
            if rows:
                assert blocks[0][0] == 0
                assert np.array_equal(np.concatenate([b for _, b in blocks]).reshape(want.shape),
                                      want)
            raw = b"".join(bytes(m) for m in src.iter_raw_bytes(name))
            assert raw == want.tobytes()
    assert infos["bf16"].dtype == "BF16" and infos["f16"].dtype == "F16"
    assert src.metadata() == {"format": "pt"}
    src.close()


def test_scattered_rows_are_the_same_rows_in_the_stored_dtype(tmp_path: Path) -> None:
    """read_row_set gathers scattered (repeated, unsorted) rows in one step; they equal the
    rows read one at a time; an index past the end is refused, an empty set gives no rows."""
    tensors = _tensors()
    src = SafetensorsSource(_model(tmp_path / "m", tensors))
    tested = 0
    for name, info in src.tensors().items():
        if len(info.shape) < 2 or info.rows < 2:
            continue
        tested += 1
        rows = np.array([info.rows - 1, 0, 1, 1, info.rows - 1])
        got = src.read_row_set(name, rows)
        want = np.concatenate([src.read_rows(name, r, r + 1) for r in rows])
        assert got.dtype == want.dtype and np.array_equal(got, want), name
        assert src.read_row_set(name, np.array([], dtype=np.int64)).shape == (0, *info.shape[1:])
        with pytest.raises(IndexError):
            src.read_row_set(name, np.array([info.rows]))
    assert tested >= 3  # every float dtype of the fixture
    src.close()


def test_tensors_listed_in_file_order(tmp_path: Path) -> None:
    src = SafetensorsSource(_model(tmp_path / "m", _tensors()))
    offsets = []
    with open(tmp_path / "m" / "model.safetensors", "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
    for name in src.tensors():
        offsets.append(header[name]["data_offsets"][0])
    assert offsets == sorted(offsets)


def test_sharded_equals_single(tmp_path: Path) -> None:
    tensors = _tensors()
    single = SafetensorsSource(_model(tmp_path / "single", tensors))
    sharded = SafetensorsSource(_model(tmp_path / "sharded", tensors, shards=3))
    assert len(sharded.weight_files()) == 3 and len(single.weight_files()) == 1
    a, b = single.tensors(), sharded.tensors()
    assert set(a) == set(b)
    for name in a:
        assert (a[name].shape, a[name].dtype, a[name].nbytes) == (
            b[name].shape, b[name].dtype, b[name].nbytes)
        ra = single.read_rows(name, 0, a[name].rows)
        rb = sharded.read_rows(name, 0, b[name].rows)
        assert ra.dtype == rb.dtype and np.array_equal(ra, rb)
    assert sharded.config() == single.config()


def test_single_file_config_comes_from_its_neighbour(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"w": torch.ones(2, 2)})
    assert open_source(str(d / "model.safetensors")).config()["model_type"] == "llama"
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    save_file({"w": torch.ones(2, 2)}, str(lonely / "w.safetensors"))
    src = open_source(str(lonely / "w.safetensors"))
    assert src.config() == {} and src.root is None and src.repo_files() == []


def test_reading_rows_does_not_copy_the_tensor(tmp_path: Path) -> None:
    big = torch.zeros(4096, 2048, dtype=torch.float16)  # 16 MB
    src = SafetensorsSource(_model(tmp_path / "m", {"big": big}))
    tracemalloc.start()
    total = 0.0
    for _, block in src.iter_row_blocks("big", block_bytes=1 << 20):
        total += float(block[0, 0])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # far below the 16 MB tensor


def test_repo_files_and_vocabulary(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"w": torch.ones(2, 2)})
    (d / "LICENSE").write_text("Apache License 2.0")
    (d / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    (d / "modeling_x.py").write_text("print('hi')")
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    (d / ".hidden.json").write_text("{}")
    (d / "huge.txt").write_bytes(b"x" * (9 * 1024 * 1024))
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, d / "NOTICE.txt")
    (d / "tokenizer.json").write_text(json.dumps(
        {"model": {"vocab": {"a": 0, "b": 2, "c": 1}},
         "added_tokens": [{"id": 3, "content": "<s>"}]}))
    src = SafetensorsSource(d)
    names = {p.name for p in src.repo_files()}
    assert names == {"LICENSE", "README.md", "modeling_x.py", "config.json", "tokenizer.json"}
    assert src.vocabulary() == ["a", "c", "b", "<s>"]
    (d / "tokenizer.json").write_text(json.dumps({"model": {"vocab": [["x", 0.0], ["y", -1.0]]}}))
    assert SafetensorsSource(d).vocabulary() == ["x", "y"]
    (d / "tokenizer.json").unlink()
    (d / "vocab.txt").write_text("[PAD]\nhello\n")
    assert SafetensorsSource(d).vocabulary() == ["[PAD]", "hello"]


# -- hostile files ------------------------------------------------------------------------

def test_truncated_file(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"w": torch.ones(64, 64)})
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    assert "truncated" in _error(f)
    f.write_bytes(b"\x01\x02")
    assert "truncated" in _error(f)


def test_header_length_beyond_the_file(tmp_path: Path) -> None:
    f = _raw(tmp_path / "x.safetensors", {}, b"", length=5000)
    assert "beyond the end of the file" in _error(f)


def test_header_length_over_the_cap(tmp_path: Path) -> None:
    f = _raw(tmp_path / "x.safetensors", {}, b"", length=2**40)
    assert "limit" in _error(f)


def test_overlapping_offsets(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}
    f = _raw(tmp_path / "x.safetensors", header, bytes(24))
    assert "overlapping" in _error(f)


def test_wrong_dtype_size(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 16]}}
    f = _raw(tmp_path / "x.safetensors", header, bytes(16))
    msg = _error(f)
    assert "F16" in msg and "needs 8 bytes" in msg and "span 16" in msg


def test_data_offsets_past_the_data(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    f = _raw(tmp_path / "x.safetensors", header, bytes(8))
    assert "truncated" in _error(f)


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
         b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', "duplicate key"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}', "unknown dtype"),
        (b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "invalid shape"),
        (b'{"a": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}', "invalid shape"),
        (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}', "data_offsets"),
        (b'{"a": {"dtype": "F32", "shape": [1]}}', "data_offsets"),
        (b'{"a": [1]}', "must be an object"),
        (b'{"__metadata__": [1]}', "__metadata__"),
    ],
)
def test_malformed_headers(tmp_path: Path, header: bytes, fragment: str) -> None:
    f = _raw(tmp_path / "x.safetensors", header, bytes(4))
    assert fragment in _error(f)


def test_missing_shard(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", _tensors(), shards=3)
    (d / "model-00002-of-00003.safetensors").unlink()
    msg = _error(d)
    assert "model-00002-of-00003.safetensors" in msg and "missing" in msg


def test_tensor_in_two_shards(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"a": torch.ones(2), "b": torch.ones(2)}, shards=2)
    shard2 = d / "model-00002-of-00002.safetensors"
    save_file({"b": torch.ones(2), "a": torch.zeros(2)}, str(shard2))
    with pytest.raises(ModelFileError) as exc:
        SafetensorsSource(d)
    msg = str(exc.value)
    assert "'a'" in msg and "model-00001-of-00002.safetensors" in msg
    assert "model-00002-of-00002.safetensors" in msg


def test_index_naming_the_wrong_shard(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"a": torch.ones(2), "b": torch.ones(2)}, shards=2)
    index = d / "model.safetensors.index.json"
    wm = json.loads(index.read_text())["weight_map"]
    wm["a"], wm["b"] = wm["b"], wm["a"]
    index.write_text(json.dumps({"weight_map": wm}))
    with pytest.raises(ModelFileError) as exc:
        SafetensorsSource(d)
    assert "model.safetensors.index.json" in str(exc.value) and "does not hold" in str(exc.value)


def test_index_cannot_escape_the_directory(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"a": torch.ones(2)})
    save_file({"b": torch.ones(2)}, str(tmp_path / "outside.safetensors"))
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model.safetensors", "b": "../outside.safetensors"}}))
    with pytest.raises(ModelFileError) as exc:
        SafetensorsSource(d)
    assert "invalid shard name" in str(exc.value)


def test_bad_config_json(tmp_path: Path) -> None:
    d = _model(tmp_path / "m", {"a": torch.ones(2)})
    (d / "config.json").write_text('{"model_type": "llama", "model_type": "gpt2"}')
    with pytest.raises(ModelFileError) as exc:
        SafetensorsSource(d).config()
    assert "config.json" in str(exc.value) and "duplicate" in str(exc.value)


def test_minilm_real_model(minilm_dir: Path) -> None:
    src = open_source(str(minilm_dir))
    cfg = src.config()
    assert cfg["model_type"] == "bert" and cfg["num_hidden_layers"] == 6
    infos = src.tensors()
    q = [n for n in infos if n.endswith("layer.0.attention.self.query.weight")]
    assert len(q) == 1 and infos[q[0]].shape == (384, 384) and infos[q[0]].dtype == "F32"
    with safe_open(str(src.weight_files()[0]), "np") as ref:
        want = ref.get_tensor(q[0])
    assert np.array_equal(src.read_rows(q[0], 100, 300), want[100:300])
    vocab = src.vocabulary()
    assert vocab is not None and len(vocab) == cfg["vocab_size"]
    assert any(p.name == "README.md" for p in src.repo_files())
