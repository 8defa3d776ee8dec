"""Symlinks in a model directory: weight files may point anywhere (they are validated as
weights), repository text files (README, licence, tokenizer) must stay inside the model.

The layout is what ``huggingface-cli download --local-dir DIR`` leaves with symlinks: the
content in a hub cache (``models--org--name/blobs/<sha256>``, linked from
``snapshots/<commit>/<file>``) and ``DIR/<file>`` linking into that snapshot.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from benchmarks.fuzz.inputs import write_model_dir

from modelprint import cli
from modelprint.fingerprint.model import Fingerprint
from modelprint.models import clear_memo

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_local_dir(tmp_path: Path, link_names: tuple[str, ...]) -> Path:
    """A --local-dir folder whose ``link_names`` are symlinks through a hub cache."""
    plain = write_model_dir(tmp_path / "plain")
    repo = tmp_path / "hub" / "models--acme--tiny"
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    local = tmp_path / "local-dir"
    local.mkdir()
    for f in sorted(plain.iterdir()):
        if f.name not in link_names:
            (local / f.name).write_bytes(f.read_bytes())
            continue
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
        os.symlink(snap / f.name, local / f.name)
    return local


def _fingerprint(model: Path, tmp_path: Path, capsys: object) -> tuple[int, Fingerprint | None]:
    clear_memo()
    out = tmp_path / "out.fp.json"
    code = cli.main(["fingerprint", str(model), "-o", str(out), "--no-cache"])
    return code, Fingerprint.load(out) if code == 0 else None


def test_weights_linked_into_a_hub_cache_are_read(tmp_path: Path, capsys: object) -> None:
    local = _hub_local_dir(tmp_path, ("model.safetensors",))
    assert (local / "model.safetensors").is_symlink()
    code, fp = _fingerprint(local, tmp_path, capsys)
    assert code == 0 and fp is not None
    _, plain = _fingerprint(tmp_path / "plain", tmp_path, capsys)
    assert plain is not None
    assert fp.curves == plain.curves   # the same weights, read through the links
    assert fp.sketches.get("embedding") is not None   # the tokenizer (a plain file) was read


def test_weights_may_link_to_any_regular_file(tmp_path: Path, capsys: object) -> None:
    model = write_model_dir(tmp_path / "m")
    elsewhere = tmp_path / "somewhere" / "weights.bin.safetensors"
    elsewhere.parent.mkdir()
    (model / "model.safetensors").rename(elsewhere)
    os.symlink(elsewhere, model / "model.safetensors")
    assert _fingerprint(model, tmp_path, capsys)[0] == 0


def test_text_files_linking_outside_the_model_are_not_read(tmp_path: Path,
                                                           capsys: object) -> None:
    """A tokenizer or README linking into the hub cache (outside the --local-dir folder)
    is ignored as if absent: its content never reaches the fingerprint."""
    local = _hub_local_dir(tmp_path, ("model.safetensors", "tokenizer.json"))
    secret = tmp_path / "secret.md"
    secret.write_text("---\nlicense: llama2\n---\nconfidential text outside the model\n")
    os.symlink(secret, local / "README.md")
    code, fp = _fingerprint(local, tmp_path, capsys)
    assert code == 0 and fp is not None
    assert fp.sketches.get("embedding") is None          # no vocabulary read
    files = [f["path"] for f in fp.documents["files"]]
    assert "README.md" not in files and not any("secret" in str(f) for f in files)
    assert "llama2" not in str(fp.documents)            # its licence claim was not read
