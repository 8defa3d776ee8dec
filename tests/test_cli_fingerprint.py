"""``modelprint fingerprint``: the file it writes, the summary, and bad input as one line.

Bad input of every kind the issue lists must give exit 2 and a single stderr line that names
the file and the cause -- never a traceback. A few cases run the real console entry point in
a subprocess (what a user sees); the rest call ``cli.main`` in-process to stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modelprint import cli
from modelprint.fingerprint.model import Fingerprint
from modelprint.models import clear_memo

from .synth import make_model
from .test_fingerprint_props import read_entries, write_ordered


@pytest.fixture(autouse=True)
def _fresh() -> None:
    clear_memo()


def _run_subprocess(args: list[str], cwd: Path, env: dict[str, str] | None = None
                    ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelprint.cli", "fingerprint", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_writes_default_output_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    m = make_model(tmp_path, "qwen2", dtype="BF16", layers=3, sharded=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli.main(["fingerprint", str(m.path)]) == 0
    out = capsys.readouterr().out
    written = work / f"{m.path.name}.fp.json"
    fp = Fingerprint.load(written)
    assert fp.architecture.family == "qwen2" and fp.num_layers == 3
    assert "qwen2" in out and "3 layers" in out and "heads 4 / kv heads 2" in out
    assert "BF16" in out
    q = [v for v in fp.curves["attn.q"]["std"] if v is not None]
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("attn.q "))
    assert f"{min(q):.4g}" in line and f"{max(q):.4g}" in line and "(3)" in line
    for f in m.files:
        assert f"{f.name}  sha256 {hashlib.sha256(f.read_bytes()).hexdigest()[:16]}" in out
    assert str(written) in out


def test_output_option_and_fingerprint_input(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    m = make_model(tmp_path, "gpt2", dtype="F16")
    out = tmp_path / "deep" / "g.fp.json"
    assert cli.main(["fingerprint", str(m.path), "-o", str(out)]) == 0
    again = tmp_path / "again.fp.json"
    assert cli.main(["fingerprint", str(out), "-o", str(again)]) == 0
    assert Fingerprint.load(again).to_json() == Fingerprint.load(out).to_json()
    assert "gpt2" in capsys.readouterr().out


def _hub_repo(hub: Path, repo_id: str, commit: str, files: dict[str, bytes]) -> None:
    """The layout huggingface_hub writes: content in blobs/, symlinks in snapshots/<commit>/,
    the branch's commit in refs/main."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in files.items():
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        os.symlink(os.path.relpath(repo / "blobs" / blob, snap), snap / name)


def test_hf_reference_offline_from_the_hub_cache(tmp_path: Path) -> None:
    m = make_model(tmp_path, "llama", dtype="BF16")
    commit = "0123456789abcdef0123456789abcdef01234567"
    hub = tmp_path / "hub"
    _hub_repo(hub, "tiny-org/tiny-llama", commit,
              {p.name: p.read_bytes() for p in m.path.iterdir() if p.is_file()})
    work = tmp_path / "work"
    work.mkdir()
    res = _run_subprocess(["hf:tiny-org/tiny-llama"], work,
                          {"HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1",
                           "MODELPRINT_CACHE_DIR": str(tmp_path / "mpcache")})
    assert res.returncode == 0, res.stderr
    fp = Fingerprint.load(work / "tiny-llama.fp.json")
    assert fp.model.kind == "hf" and fp.model.revision == commit
    assert fp.model.reference == "hf:tiny-org/tiny-llama"
    assert fp.model.files["model.safetensors"] == hashlib.sha256(
        (m.path / "model.safetensors").read_bytes()).hexdigest()
    assert commit in res.stdout and "llama" in res.stdout


# --- bad input --------------------------------------------------------------------------

def _header(path: Path) -> tuple[int, dict]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8:8 + n])


def _rewrite_header(path: Path, edit: object) -> None:
    raw = path.read_bytes()
    n, header = _header(path)
    edit(header)  # type: ignore[operator]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def _first_tensor(header: dict) -> str:
    return next(k for k in header if k != "__metadata__")


def bad_truncated(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32")
    f = m.path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-1000])
    return m.path, "model.safetensors", "truncated"


def bad_header_beyond_file(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32")
    f = m.path / "model.safetensors"
    raw = f.read_bytes()
    f.write_bytes(struct.pack("<Q", len(raw) * 4) + raw[8:])
    return m.path, "model.safetensors", "header.*beyond"


def bad_overlapping(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32")
    f = m.path / "model.safetensors"

    def edit(h: dict) -> None:
        names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"])
        a, b = names[0], names[1]
        # b now starts inside a (same length, so the dtype-size check still passes)
        span = h[b]["data_offsets"][1] - h[b]["data_offsets"][0]
        start = h[a]["data_offsets"][0] + 4
        h[b]["data_offsets"] = [start, start + span]
    _rewrite_header(f, edit)
    return m.path, "model.safetensors", "overlap"


def bad_dtype_size(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32")
    f = m.path / "model.safetensors"

    def edit(h: dict) -> None:
        h[_first_tensor(h)]["dtype"] = "F16"  # half the bytes the span holds
    _rewrite_header(f, edit)
    return m.path, "model.safetensors", "dtype.*bytes"


def bad_missing_shard(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32", sharded=True)
    m.files[1].unlink()
    return m.path, m.files[1].name, "missing"


def bad_unknown_arch(tmp: Path) -> tuple[Path, str, str]:
    m = make_model(tmp, "llama", dtype="F32")
    cfg = json.loads((m.path / "config.json").read_text())
    cfg["model_type"] = "frobnicator"
    cfg["architectures"] = ["FrobnicatorForCausalLM"]
    (m.path / "config.json").write_text(json.dumps(cfg))
    return m.path, "frobnicator", "llama"  # the message lists the supported families


def bad_pickle(tmp: Path) -> tuple[Path, str, str]:
    p = tmp / "pytorch_model.bin"
    p.write_bytes(b"\x80\x04\x95 not really a pickle")
    return p, "pytorch_model.bin", "pickle"


def _edit_tensor(tmp: Path, dtype: str, name: str,
                 edit: Callable[[bytes], tuple[str, bytes]]) -> Path:
    """A tiny llama checkpoint with tensor ``name``'s (dtype, bytes) replaced by ``edit``."""
    m = make_model(tmp, "llama", dtype=dtype)
    f = m.path / "model.safetensors"
    entries = read_entries([f])
    _, shape, data = entries[name]
    new_dtype, new_data = edit(data)
    entries[name] = (new_dtype, shape, new_data)
    write_ordered(f, list(entries), entries)
    return m.path


def bad_nan(tmp: Path) -> tuple[Path, str, str]:
    def edit(data: bytes) -> tuple[str, bytes]:
        vals = np.frombuffer(data, dtype=np.uint16).copy()
        vals[7] = 0x7FC0  # bfloat16 NaN
        return "BF16", vals.tobytes()
    return _edit_tensor(tmp, "BF16", "model.layers.1.self_attn.v_proj.weight", edit), \
        "v_proj", "NaN"


def bad_huge_gain(tmp: Path) -> tuple[Path, str, str]:
    """A finite float64 norm gain beyond float32: folded into the weights it would be Inf."""
    def edit(data: bytes) -> tuple[str, bytes]:
        vals = np.frombuffer(data, dtype=np.float32).astype(np.float64)
        vals[3] = 9.7e299
        return "F64", vals.tobytes()
    return _edit_tensor(tmp, "F32", "model.layers.1.post_attention_layernorm.weight", edit), \
        "post_attention_layernorm", "beyond the float32 range"


BAD = [bad_truncated, bad_header_beyond_file, bad_overlapping, bad_dtype_size,
       bad_missing_shard, bad_unknown_arch, bad_pickle, bad_nan, bad_huge_gain]


def _assert_one_line(err: str, names: str, cause: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert names in lines[0], lines[0]
    assert re.search(cause, lines[0], flags=re.IGNORECASE), lines[0]


@pytest.mark.parametrize("case", BAD, ids=lambda f: f.__name__[4:])
def test_bad_input_is_one_line_and_exit_2(case: object, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, names, cause = case(tmp_path)  # type: ignore[operator]
    code = cli.main(["fingerprint", str(path), "-o", str(tmp_path / "x.fp.json")])
    captured = capsys.readouterr()
    assert code == 2
    _assert_one_line(captured.err, names, cause)
    assert not (tmp_path / "x.fp.json").exists()


@pytest.mark.parametrize("case", [bad_truncated, bad_nan, bad_pickle, bad_unknown_arch],
                         ids=lambda f: f.__name__[4:])
def test_bad_input_through_the_console_entry(case: object, tmp_path: Path) -> None:
    path, names, cause = case(tmp_path)  # type: ignore[operator]
    res = _run_subprocess([str(path)], tmp_path,
                          {"MODELPRINT_CACHE_DIR": str(tmp_path / "mpcache")})
    assert res.returncode == 2
    assert res.stdout == ""
    _assert_one_line(res.stderr, names, cause)


def test_unwritable_output_is_an_input_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    m = make_model(tmp_path, "llama", dtype="F32")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["fingerprint", str(m.path), "-o", str(blocker / "sub" / "x.fp.json")])
    assert code == 2
    _assert_one_line(capsys.readouterr().err, "x.fp.json", "cannot write")


@pytest.mark.real
@pytest.mark.parametrize(("fixture", "family", "layers", "heads"), [
    ("minilm_dir", "bert", 6, "heads 12 / kv heads 12"),
    ("smollm2_gguf", "llama", 30, "heads 9 / kv heads 3"),
    ("gemma3_gguf", "gemma3", 18, "heads 4 / kv heads 1"),
])
def test_cli_fingerprints_the_real_models(fixture: str, family: str, layers: int, heads: str,
                                          tmp_path: Path, request: pytest.FixtureRequest,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`modelprint fingerprint` as a user types it, on the three models of MODELS.md."""
    model = request.getfixturevalue(fixture)
    out = tmp_path / "real.fp.json"
    assert cli.main(["fingerprint", str(model), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    fp = Fingerprint.load(out)
    assert fp.architecture.family == family and fp.num_layers == layers
    assert f"{layers} layers" in text and heads in text and str(out) in text
    assert fp.sketches.get("projection") and fp.sketches.get("embedding")
