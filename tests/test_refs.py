"""MODEL reference parsing: kinds, relative paths, hub syntax, and pickle refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelprint.errors import InputError, ModelReferenceError, PickleRefusedError
from modelprint.refs import parse_reference
from modelprint.sources import open_source


def _one_line(err: InputError, name: str) -> str:
    msg = str(err)
    assert "\n" not in msg
    assert name in msg
    return msg


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path / "model.safetensors"))
    (path / "config.json").write_text('{"model_type": "llama"}')
    return path


@pytest.mark.parametrize(
    ("text", "repo", "rev"),
    [
        ("hf:Qwen/Qwen2.5-14B", "Qwen/Qwen2.5-14B", None),
        ("hf:org/name@main", "org/name", "main"),
        ("hf:org/name@" + "a" * 40, "org/name", "a" * 40),
        ("hf:my_org/x.y-z@v1.0", "my_org/x.y-z", "v1.0"),
        ("hf:org/name@refs/pr/1", "org/name", "refs/pr/1"),
    ],
)
def test_hub_references(text: str, repo: str, rev: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.kind, ref.repo_id, ref.revision, ref.text) == ("hf", repo, rev, text)


@pytest.mark.parametrize(
    "text",
    ["hf:name", "hf:org/", "hf:/name", "hf:org/na me", "hf:org/name@", "hf:-org/name",
     "hf:org/name.", "hf:org--x/name", "hf:org/a..b", "hf:org/name@../x", "hf:a/b/c",
     "hf:org/name@rev with space"],
)
def test_bad_hub_references(text: str) -> None:
    with pytest.raises(ModelReferenceError) as exc:
        parse_reference(text)
    _one_line(exc.value, text.strip())


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    _model_dir(tmp_path / "audits" / "models" / "m")
    ref = parse_reference("models/m", base_dir=tmp_path / "audits")
    assert ref.kind == "directory"
    assert ref.path == tmp_path / "audits" / "models" / "m"
    assert ref.text == "models/m"
    # without base_dir the same text is relative to the working directory: not found here
    with pytest.raises(ModelReferenceError):
        parse_reference("models/m", base_dir=tmp_path)


def test_file_kinds(tmp_path: Path) -> None:
    d = _model_dir(tmp_path / "m")
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    (tmp_path / "x.fp.json").write_text("{}")
    assert parse_reference(str(d / "model.safetensors")).kind == "safetensors"
    assert parse_reference(str(tmp_path / "x.gguf")).kind == "gguf"
    assert parse_reference(str(tmp_path / "x.fp.json")).kind == "fingerprint"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelReferenceError) as exc:
        parse_reference(str(tmp_path / "nope.safetensors"))
    assert "no such file" in _one_line(exc.value, "nope.safetensors")


def test_unknown_file_type(tmp_path: Path) -> None:
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ModelReferenceError) as exc:
        parse_reference(str(tmp_path / "weights.npz"))
    _one_line(exc.value, "weights.npz")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "x.pth", "last.ckpt", "m.pkl"])
def test_pickles_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(PickleRefusedError) as exc:
        parse_reference(str(tmp_path / name))
    msg = _one_line(exc.value, name)
    assert "execute" in msg and "never opens" in msg
    assert "save_file" in msg and "convert" in msg and "sandbox" in msg


def test_directory_with_only_pickles_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "old"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(PickleRefusedError) as exc:
        parse_reference(str(d))
    _one_line(exc.value, "pytorch_model.bin")


def test_directory_prefers_safetensors_over_pickles(tmp_path: Path) -> None:
    d = _model_dir(tmp_path / "both")
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    assert parse_reference(str(d)).kind == "directory"


def test_directory_needs_config_and_weights(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelReferenceError) as exc:
        parse_reference(str(empty))
    assert "safetensors" in _one_line(exc.value, "empty")
    d = _model_dir(tmp_path / "noconf")
    (d / "config.json").unlink()
    with pytest.raises(ModelReferenceError) as exc:
        parse_reference(str(d))
    assert "config.json" in _one_line(exc.value, "noconf")


def test_fingerprint_is_not_a_source(tmp_path: Path) -> None:
    (tmp_path / "a.fp.json").write_text("{}")
    with pytest.raises(ModelReferenceError) as exc:
        open_source(str(tmp_path / "a.fp.json"))
    assert "load_model" in _one_line(exc.value, "a.fp.json")


def test_open_source_dispatches(tmp_path: Path) -> None:
    d = _model_dir(tmp_path / "m")
    with open_source("m", base_dir=tmp_path) as src:
        assert src.reference == "m"
        assert src.root == d
        assert list(src.tensors()) == ["w"]
