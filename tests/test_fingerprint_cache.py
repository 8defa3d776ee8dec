"""The content-addressed fingerprint cache, the file-hash memo and ``load_model``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelprint import models
from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint import cache, hashing, packed
from modelprint.fingerprint.cache import fingerprint_dir, fingerprint_source
from modelprint.fingerprint.model import Fingerprint
from modelprint.fingerprint.packed import pack, unpack
from modelprint.models import SourceWeights, clear_memo, load_model
from modelprint.sources import open_source

from .synth import make_model


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache per test (counts of builds and hashes must start from zero)."""
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "cache"))
    clear_memo()


class Counter:
    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *a: Any, **k: Any) -> Any:
        self.calls += 1
        return self.fn(*a, **k)


def _load_entry(path: Path) -> Fingerprint:
    """A cache entry read and validated in full, like a fingerprint file."""
    return cache.entry_fingerprint(path.read_bytes(), path)


def _content(fp: Fingerprint) -> dict[str, Any]:
    data = json.loads(json.dumps(fp.to_json()))
    del data["model"]
    return data


def test_second_load_hits_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = make_model(tmp_path, "llama", dtype="BF16")
    builds = Counter(cache.build_fingerprint)
    monkeypatch.setattr(cache, "build_fingerprint", builds)
    first = load_model(m.path).fingerprint
    clear_memo()  # a new process would start here
    second = load_model(m.path).fingerprint
    assert builds.calls == 1
    assert _content(first) == _content(second)
    assert list(fingerprint_dir().glob("*.fp.cache"))


def test_memo_avoids_rehashing_until_the_file_changes(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    m = make_model(tmp_path, "qwen2", dtype="F16")
    hashes = Counter(hashing.sha256_file)
    monkeypatch.setattr(hashing, "sha256_file", hashes)
    with open_source(str(m.path)) as src:
        fingerprint_source(src, use_cache=False)
        n_first = hashes.calls
        fingerprint_source(src, use_cache=False)
        assert n_first >= 1 and hashes.calls == n_first  # weight file not read again
    weights = m.path / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with open_source(str(m.path)) as src:
        fingerprint_source(src, use_cache=False)
    assert hashes.calls == n_first + 1


def test_same_content_elsewhere_shares_the_entry(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    m = make_model(tmp_path, "gemma", dtype="BF16")
    copy = tmp_path / "copy"
    shutil.copytree(m.path, copy)
    a = load_model(m.path).fingerprint
    load_model(copy)  # new files: hashed (and, by design, fingerprinted) once
    clear_memo()
    builds = Counter(cache.build_fingerprint)
    monkeypatch.setattr(cache, "build_fingerprint", builds)
    b = load_model(copy).fingerprint
    assert builds.calls == 0
    assert len(list(fingerprint_dir().glob("*.fp.cache"))) == 1
    assert _content(a) == _content(b)
    # the entry was written for the original path; the hit names the caller's reference
    assert b.model.reference == str(copy) and a.model.reference == str(m.path)


def test_different_config_is_a_different_entry(tmp_path: Path) -> None:
    """Same weights, other head counts: fused splits could differ, so no sharing."""
    m = make_model(tmp_path, "llama", dtype="F32")
    other = tmp_path / "other"
    shutil.copytree(m.path, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["rope_theta"] = 1234.0
    (other / "config.json").write_text(json.dumps(cfg))
    load_model(m.path)
    load_model(other)
    assert len(list(fingerprint_dir().glob("*.fp.cache"))) == 2


def test_damaged_entry_is_rebuilt(tmp_path: Path) -> None:
    m = make_model(tmp_path, "llama", dtype="F32")
    good = load_model(m.path).fingerprint
    (entry,) = fingerprint_dir().glob("*.fp.cache")
    entry.write_text('{"format": "modelprint.fingerprint/1", "model"')
    clear_memo()
    again = load_model(m.path).fingerprint
    assert _content(again) == _content(good)
    assert _load_entry(entry).architecture == good.architecture


def test_only_the_bytes_the_cache_wrote_and_checked_skip_the_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry is stamped with the BLAKE3 of its bytes once it passed the full check; a
    stamped entry is read without the schema pass, anything else is validated in full -- so
    an entry edited in place (valid JSON, a field out of range) is refused and rebuilt."""
    from modelprint.fingerprint import model as fpmodel

    m = make_model(tmp_path, "llama", dtype="F32")
    good = load_model(m.path).fingerprint
    (entry,) = fingerprint_dir().glob("*.fp.cache")
    stamp = entry.with_name(entry.name + ".checked")
    assert stamp.read_text() == cache._digest(entry.read_bytes())
    calls: list[str] = []
    real = fpmodel.validate
    monkeypatch.setattr(fpmodel, "validate", lambda *a: (calls.append("v"), real(*a))[1])
    clear_memo()
    assert _content(load_model(m.path).fingerprint) == _content(good)
    assert calls == []                          # stamped: parsed without the schema pass
    doc = unpack(entry.read_bytes(), entry)
    doc["architecture"]["num_layers"] = -3      # a well-formed entry, an invalid fingerprint
    entry.write_bytes(pack(doc))
    clear_memo()
    again = load_model(m.path).fingerprint     # validated in full, refused, rebuilt
    assert calls and _content(again) == _content(good)
    assert stamp.read_text() == cache._digest(entry.read_bytes())
    assert _load_entry(entry).num_layers == good.num_layers


_WORKER = """
import json, sys
from modelprint.fingerprint.cache import fingerprint_source
from modelprint.sources import open_source
with open_source(sys.argv[1]) as src:
    data = fingerprint_source(src).to_json()
del data["model"]
print(json.dumps(data, sort_keys=True))
"""


def test_concurrent_processes_agree_and_leave_a_valid_entry(tmp_path: Path) -> None:
    m = make_model(tmp_path, "mixtral", dtype="BF16", experts=4)
    env = {**os.environ, "MODELPRINT_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(m.path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    results = {out for out, _ in outs}
    assert len(results) == 1
    entries = list(fingerprint_dir().glob("*.fp.cache"))
    assert len(entries) == 1
    assert json.dumps(_content(_load_entry(entries[0])), sort_keys=True) == \
        results.pop().strip()
    assert not [p for p in fingerprint_dir().iterdir() if p.name.endswith(".tmp")]


def test_a_build_in_progress_is_waited_for_not_repeated(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder has hashed the files (their digests are remembered) but not yet saved the
    entry: a second caller (the prefetch child's parent, an xdist worker) waits for it and
    takes the entry instead of fingerprinting the same weights again beside it."""
    m = make_model(tmp_path, "llama", dtype="BF16")
    real = cache.build_fingerprint
    hashed, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_build(*a: Any, **k: Any) -> Fingerprint:
        calls.append(threading.current_thread().name)
        fp = real(*a, **k)
        hashed.set()        # the file digests are in the memo now; the entry is not saved
        assert release.wait(30)
        return fp

    monkeypatch.setattr(cache, "build_fingerprint", slow_build)
    results: dict[str, Fingerprint] = {}

    def load(name: str) -> None:
        with open_source(str(m.path)) as src:
            results[name] = fingerprint_source(src)

    first = threading.Thread(target=load, args=("first",), name="first")
    first.start()
    assert hashed.wait(60)
    assert hashing.memo_lookup(m.path / "model.safetensors") is not None
    second = threading.Thread(target=load, args=("second",), name="second")
    second.start()
    second.join(1.0)
    assert second.is_alive() and calls == ["first"]     # waiting, not building
    release.set()
    first.join(60)
    second.join(60)
    assert calls == ["first"]
    assert _content(results["second"]) == _content(results["first"])


def test_fingerprint_file_is_a_model_reference(tmp_path: Path) -> None:
    m = make_model(tmp_path, "phi3", dtype="BF16")
    fp = load_model(m.path).fingerprint
    fp.save(tmp_path / "phi.fp.json")
    view = load_model(tmp_path / "phi.fp.json", weights=True)
    assert view.weights is None
    assert _content(view.fingerprint) == _content(fp)
    assert view.fingerprint.model.reference == str(m.path)


def test_process_memo_returns_the_same_view_until_files_change(tmp_path: Path) -> None:
    m = make_model(tmp_path, "llama", dtype="F32")
    a = load_model(m.path)
    assert load_model(str(m.path)) is a
    replacement = make_model(tmp_path / "b", "llama", dtype="F32", seed=7)
    shutil.copy(replacement.path / "model.safetensors", m.path / "model.safetensors")
    b = load_model(m.path)
    assert b is not a
    assert b.fingerprint.curve("attn.q") != a.fingerprint.curve("attn.q")


def test_weight_access(tmp_path: Path) -> None:
    m = make_model(tmp_path, "gemma2", dtype="BF16")
    view = load_model(m.path, weights=True)
    assert isinstance(view.weights, SourceWeights)
    w = view.weights
    q = w.get("attn.q", 1)
    assert q is not None and q.dtype == np.float32
    np.testing.assert_array_equal(q, m.roles[("attn.q", 1, None)].astype(np.float32))
    rows = w.rows("embed", None, np.array([5, 0, 17]))
    np.testing.assert_array_equal(rows, m.roles[("embed", None, None)][[5, 0, 17]])
    norm = w.get("norm.attn", 0)  # Gemma: effective gain 1 + w, as in the fingerprint
    np.testing.assert_allclose(norm, m.roles[("norm.attn", 0, None)] + 1.0, rtol=1e-7)
    np.testing.assert_allclose(norm, view.fingerprint.vector("norm.attn", 0), rtol=1e-7)
    assert w.get("moe.router", 0) is None
    # asking without weights later reuses the loaded view
    assert models.load_model(m.path) is view


def test_weight_reads_drop_mapped_pages_as_they_go(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks read matrix after matrix; every RELEASE_BYTES read, the source is asked to
    drop its resident mapped pages (RSS would otherwise grow with the model), and values read
    before and after a release are the same."""
    from modelprint.sources import pages

    m = make_model(tmp_path, "llama", dtype="BF16")
    view = load_model(m.path, weights=True)
    w = view.weights
    assert isinstance(w, SourceWeights)
    releases = Counter(w.source.release_pages)
    monkeypatch.setattr(w.source, "release_pages", releases)
    w._pages = pages.PageReleaser(w.source)  # sees the counting hook
    q_bytes = w.source.tensors()[next(s.tensor for s in w.slots()
                                      if (s.role, s.layer) == ("attn.q", 0))].nbytes
    monkeypatch.setattr(pages, "RELEASE_BYTES", 3 * q_bytes)
    first = w.get("attn.q", 0)
    for _ in range(5):
        again = w.get("attn.q", 0)
        assert again is not None and first is not None
        np.testing.assert_array_equal(again, first)
    assert releases.calls == 2  # 6 reads of one matrix, a release every 3
    w.rows("attn.q", 0, np.array([0, 1]))  # a few rows count the whole tensor
    w.rows("attn.q", 0, np.array([2]))
    w.rows("attn.q", 0, np.array([3]))
    assert releases.calls == 3


def test_a_cached_entry_is_the_same_fingerprint_as_the_file(tmp_path: Path) -> None:
    """The cache keeps sketches as raw float16 (no base64); read back, the fingerprint
    exports the same ``*.fp.json`` text as the one built, and every sketch decodes to the
    same numbers -- as fresh float64 arrays the caller may change."""
    from modelprint.fingerprint.sketches import decode

    m = make_model(tmp_path, "llama", dtype="BF16")
    with open_source(m.path) as src:
        built = fingerprint_source(src, use_cache=False)
    load_model(m.path)                       # builds and saves the entry
    clear_memo()
    cached = load_model(m.path).fingerprint  # read back from the entry
    assert cached.to_text() == built.to_text()
    pairs = list(zip(packed.sketch_entries(built.sketches), packed.sketch_entries(cached.sketches),
                     strict=True))
    assert pairs and all(isinstance(c["values"], np.ndarray) for _, c in pairs)
    for b, c in pairs:
        got = decode(c)
        assert got.dtype == np.float64 and np.array_equal(got, decode(b))
        got[...] = 7.0
        assert np.array_equal(decode(c), decode(b))


def _split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """A cache entry's header (``values`` still as payload references) and payload."""
    start = len(packed.MAGIC) + packed.HEADER_LEN
    size = int.from_bytes(raw[len(packed.MAGIC):start], "little")
    return json.loads(raw[start:start + size]), raw[start + size:]


def _join(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header).encode()
    return packed.MAGIC + len(head).to_bytes(packed.HEADER_LEN, "little") + head + body


@pytest.mark.parametrize("damage", ["truncated", "header length", "offset", "odd length",
                                    "base64 values"])
def test_a_hostile_cache_entry_is_rebuilt_not_read(tmp_path: Path, damage: str) -> None:
    """An entry whose payload references point outside the file, whose header length runs
    past its end, or whose values are not references, is refused and rebuilt: never read out
    of bounds, never a crash -- even with a stamp that matches its bytes."""
    m = make_model(tmp_path, "llama", dtype="F32")
    good = load_model(m.path).fingerprint
    (entry,) = fingerprint_dir().glob("*.fp.cache")
    raw = entry.read_bytes()
    header, body = _split(raw)
    first = next(packed.sketch_entries(header["sketches"]))
    if damage == "truncated":
        bad = raw[: len(raw) // 2]
    elif damage == "header length":
        bad = packed.MAGIC + (1 << 40).to_bytes(packed.HEADER_LEN, "little") + b"{}"
    else:
        first["values"] = {"offset": [len(body), 2], "odd length": [0, 3],
                           "base64 values": "AAAA"}[damage]
        bad = _join(header, body)
    entry.write_bytes(bad)
    entry.with_name(entry.name + ".checked").write_text(cache._digest(bad))
    with pytest.raises(FingerprintFormatError, match=entry.name):
        cache.entry_fingerprint(bad, entry, trusted=True)
    clear_memo()
    assert _content(load_model(m.path).fingerprint) == _content(good)
    assert _load_entry(entry).num_layers == good.num_layers
