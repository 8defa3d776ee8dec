"""``hf:`` references resolved offline from a cache laid out exactly as huggingface_hub does:
``models--org--name/blobs/<sha256>``, ``snapshots/<commit>/<file>`` symlinks into the blobs,
``refs/main`` holding the commit."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from modelprint.errors import HubError, ModelFileError
from modelprint.sources import open_source

OLD = "1" * 40
NEW = "abcdef0123456789abcdef0123456789abcdef01"


def _put(repo: Path, commit: str, name: str, data: bytes) -> None:
    blob = hashlib.sha256(data).hexdigest()
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs" / blob).write_bytes(data)
    link = repo / "snapshots" / commit / name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(repo / "blobs" / blob, link.parent), link)


def _commit(repo: Path, commit: str, value: float) -> None:
    weights = save({"w": np.full((4, 3), value, np.float32)})
    _put(repo, commit, "model.safetensors", weights)
    _put(repo, commit, "config.json", json.dumps({"model_type": "llama"}).encode())
    _put(repo, commit, "LICENSE", b"Apache License\nVersion 2.0\n")


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny"
    _commit(repo, OLD, 1.0)
    _commit(repo, NEW, 2.0)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(NEW)
    for key in ("HF_HOME", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.mark.parametrize(("suffix", "commit", "value"),
                         [("", NEW, 2.0), ("@main", NEW, 2.0), (f"@{NEW}", NEW, 2.0),
                          (f"@{OLD}", OLD, 1.0)])
def test_offline_resolution_records_the_commit(hub: Path, suffix: str, commit: str,
                                               value: float) -> None:
    text = "hf:acme/tiny" + suffix
    with open_source(text) as src:
        assert src.reference == text
        assert src.revision == commit
        assert src.config() == {"model_type": "llama"}
        assert np.array_equal(src.read_rows("w", 0, 4), np.full((4, 3), value, np.float32))
        assert [p.name for p in src.weight_files()] == ["model.safetensors"]
        assert {p.name for p in src.repo_files()} == {"LICENSE", "config.json"}


def test_hf_home_is_honoured(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE")
    home = tmp_path / "home"
    home.mkdir()
    hub.rename(home / "hub")
    monkeypatch.setenv("HF_HOME", str(home))
    assert open_source("hf:acme/tiny").revision == NEW


def test_not_cached_and_offline(hub: Path) -> None:
    with pytest.raises(HubError) as exc:
        open_source("hf:acme/other")
    msg = str(exc.value)
    assert "\n" not in msg and "hf:acme/other" in msg
    assert "not in the local Hugging Face cache" in msg and "offline" in msg


def test_unknown_revision_offline(hub: Path) -> None:
    with pytest.raises(HubError) as exc:
        open_source("hf:acme/tiny@v9")
    assert "'v9'" in str(exc.value) and "offline" in str(exc.value)


def test_offline_argument_without_env(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert open_source("hf:acme/tiny", offline=True).revision == NEW
    with pytest.raises(HubError):
        open_source("hf:acme/absent", offline=True)


def test_cached_snapshot_without_weights(hub: Path) -> None:
    repo = hub / "models--acme--docs"
    _put(repo, OLD, "README.md", b"# just docs")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(OLD)
    with pytest.raises(HubError) as exc:
        open_source("hf:acme/docs")
    assert "no *.safetensors" in str(exc.value)


def test_text_symlinks_leaving_the_repo_are_not_followed(hub: Path, tmp_path: Path) -> None:
    """A README linking outside the repository is not read; a weight file linking anywhere is
    read as weights (and validated as such)."""
    outside = tmp_path / "secret.md"
    outside.write_text("not part of the model")
    snap = hub / "models--acme--tiny" / "snapshots" / NEW
    os.symlink(outside, snap / "README.md")
    assert "README.md" not in {p.name for p in open_source("hf:acme/tiny").repo_files()}
    elsewhere = tmp_path / "elsewhere.safetensors"
    elsewhere.write_bytes(save({"w": np.zeros(2, np.float32)}))
    (snap / "model.safetensors").unlink()
    os.symlink(elsewhere, snap / "model.safetensors")
    assert set(open_source("hf:acme/tiny").tensors()) == {"w"}
    elsewhere.write_bytes(b"\xff" * 16)   # still validated: a damaged target is refused
    with pytest.raises(ModelFileError) as exc:
        open_source("hf:acme/tiny")
    assert "model.safetensors" in str(exc.value)


def test_sharded_snapshot(hub: Path) -> None:
    repo = hub / "models--acme--big"
    a, b = np.arange(6, dtype=np.float32), np.arange(4, dtype=np.float32) * 2
    _put(repo, NEW, "model-00001-of-00002.safetensors", save({"a": a}))
    _put(repo, NEW, "model-00002-of-00002.safetensors", save({"b": b}))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}
    _put(repo, NEW, "model.safetensors.index.json", json.dumps(index).encode())
    _put(repo, NEW, "config.json", b'{"model_type": "qwen2"}')
    src = open_source(f"hf:acme/big@{NEW}")
    assert src.revision == NEW and set(src.tensors()) == {"a", "b"}
    assert np.array_equal(src.read_rows("b", 0, 4), b)
    buf = io.BytesIO()
    for m in src.iter_raw_bytes("a"):
        buf.write(m)
    assert buf.getvalue() == a.tobytes()


def test_unreachable_hub_falls_back_to_the_cache(
    hub: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huggingface_hub

    calls: list[str] = []

    def down(self: object, repo_id: str, **kwargs: object) -> list[str]:
        calls.append(repo_id)
        raise ConnectionError("network is down")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", down)
    assert open_source("hf:acme/tiny", offline=False).revision == NEW
    assert calls == ["acme/tiny"]
    # a pinned commit already in the cache needs no network at all
    assert open_source(f"hf:acme/tiny@{OLD}", offline=False).revision == OLD
    assert calls == ["acme/tiny"]
    with pytest.raises(HubError) as exc:
        open_source("hf:acme/absent", offline=False)
    assert "cannot be reached" in str(exc.value)
