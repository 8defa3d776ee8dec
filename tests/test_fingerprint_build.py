"""The one-pass fingerprint of every synthetic family equals torch on the ground truth.

For each family of tests/synth.py, stored as F32, F16 and BF16, in one file and sharded: every
role slot's std/mean/l2 equals ``torch.std`` / ``mean`` / ``vector_norm`` of the float64
ground-truth tensor to 1e-10 relative; per-layer curves pool a layer's experts exactly;
bias and norm vectors are the stored values (norm gains plus Gemma's offset); every stored
tensor and weight file carries its sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from modelprint.fingerprint.build import build_fingerprint, is_norm_gain
from modelprint.fingerprint.model import Fingerprint
from modelprint.sources import open_source

from .synth import FAMILIES, MOE_FAMILIES, SynthModel, make_gguf, make_model

REL = 1e-10


def _truth(x: np.ndarray) -> tuple[float, float, float]:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    return t.std().item(), t.mean().item(), torch.linalg.vector_norm(t).item()


def _assert_stats(got: tuple[float, float, float], x: np.ndarray, what: str) -> None:
    std, mean, l2 = _truth(x)
    gstd, gmean, gl2 = got
    assert gstd == pytest.approx(std, rel=REL), f"{what} std"
    assert gl2 == pytest.approx(l2, rel=REL), f"{what} l2"
    # a mean near zero is compared relative to the spread, the only scale it has
    assert abs(gmean - mean) <= REL * max(abs(mean), std), f"{what} mean"


def _fingerprint(path: Path) -> Fingerprint:
    with open_source(str(path)) as src:
        return build_fingerprint(src, progress=False)


def _offset(fp: Fingerprint, role: str) -> float:
    return fp.architecture.norm_offset if is_norm_gain(role) else 0.0


def _check_against_truth(fp: Fingerprint, m: SynthModel) -> None:
    got = {(t.role, t.layer, t.expert): t for t in fp.tensors}
    missing = set(m.roles) - set(got)
    assert not missing, f"roles not fingerprinted: {sorted(missing, key=str)[:5]}"
    for key, values in m.roles.items():
        t = got[key]
        x = values + _offset(fp, key[0])
        assert t.count == values.size and list(t.shape) == list(values.shape), key
        if values.size > 1:
            _assert_stats((t.std, t.mean, t.l2), x, str(key))
    # curves: a layer's slots (its experts) pooled, as torch sees their concatenation
    for role, curve in fp.curves.items():
        for layer, std in enumerate(curve["std"]):
            parts = [v.ravel() + _offset(fp, role) for (r, lay, _e), v in m.roles.items()
                     if r == role and lay == layer]
            if not parts:
                assert std is None or (role, layer) not in {(k[0], k[1]) for k in m.roles}
                continue
            x = np.concatenate(parts)
            if x.size > 1:
                _assert_stats((std, curve["mean"][layer], curve["l2"][layer]), x,
                              f"curve {role}[{layer}]")
    # raw vectors of biases and norms, float64, offset applied to norm gains
    for role, per_layer in fp.vectors.items():
        for layer, vec in enumerate(per_layer):
            key = (role, layer, None)
            if key in m.roles:
                assert vec is not None
                np.testing.assert_array_equal(np.asarray(vec),
                                              m.roles[key].ravel() + _offset(fp, role))


@pytest.mark.parametrize("sharded", [False, True], ids=["single", "sharded"])
@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_family_stats_equal_torch(tmp_path: Path, family: str, dtype: str,
                                  sharded: bool) -> None:
    m = make_model(tmp_path, family, dtype=dtype, sharded=sharded,
                   experts=4 if family in MOE_FAMILIES else None)
    fp = _fingerprint(m.path)
    assert fp.architecture.num_layers == 2
    _check_against_truth(fp, m)
    assert {t.dtype for t in fp.tensors} == {dtype}
    # every weight file hashed, as sha256 of its bytes
    assert sorted(fp.model.files) == sorted(f.name for f in m.files)
    for f in m.files:
        assert fp.model.files[f.name] == hashlib.sha256(f.read_bytes()).hexdigest()


def _tensor_bytes(files: list[Path]) -> dict[str, bytes]:
    """Each tensor's stored bytes, read straight from the safetensors layout."""
    out: dict[str, bytes] = {}
    for f in files:
        raw = f.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        for name, e in header.items():
            if name != "__metadata__":
                a, b = e["data_offsets"]
                out[name] = raw[8 + n + a: 8 + n + b]
    return out


def test_tensor_digest_once_per_stored_tensor(tmp_path: Path) -> None:
    """GPT-2's fused c_attn feeds q, k and v: all three carry the one tensor's BLAKE3 digest;
    the weight files keep their sha256."""
    import blake3

    m = make_model(tmp_path, "gpt2", dtype="BF16", sharded=True)
    fp = _fingerprint(m.path)
    raw = _tensor_bytes(m.files)
    for t in fp.tensors:
        assert t.blake3 == blake3.blake3(raw[t.tensor]).hexdigest(), t.tensor
        assert t.digest == f"blake3:{t.blake3}" and not t.sha256
    fused = [t for t in fp.tensors if t.tensor.endswith("h.0.attn.c_attn.weight")]
    assert {t.role for t in fused} == {"attn.q", "attn.k", "attn.v"}
    others = {o["tensor"]: o["blake3"] for o in fp.metadata["other_tensors"]}
    for name, digest in others.items():
        assert digest == blake3.blake3(raw[name]).hexdigest()
    for f in m.files:
        assert fp.model.files[f.name] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert set(others) | {t.tensor for t in fp.tensors} == set(raw)


def test_missing_layer_role_is_null(tmp_path: Path) -> None:
    """deepseek_v3's first layer is dense: expert curves are null there, not zero."""
    m = make_model(tmp_path, "deepseek_v3", dtype="F32", experts=4, layers=3)
    fp = _fingerprint(m.path)
    layers_with = {lay for (r, lay, _e) in m.roles if r == "moe.expert.up"}
    assert layers_with and layers_with != {0, 1, 2}
    curve = fp.curves["moe.expert.up"]["std"]
    assert [v is not None for v in curve] == [i in layers_with for i in range(3)]
    dense = fp.curves["mlp.up"]["std"]
    assert [v is not None for v in dense] == [
        ("mlp.up", i, None) in m.roles for i in range(3)]


def test_gemma_norms_are_effective_gains(tmp_path: Path) -> None:
    """HF Gemma stores w and applies 1 + w: vectors and norm stats describe 1 + w."""
    m = make_model(tmp_path, "gemma2", dtype="BF16")
    fp = _fingerprint(m.path)
    assert fp.architecture.norm_offset == 1.0
    w = m.roles[("norm.attn", 1, None)].ravel()
    np.testing.assert_array_equal(fp.vector("norm.attn", 1), w + 1.0)
    assert fp.curves["norm.attn"]["mean"][1] == pytest.approx(float(np.mean(w)) + 1.0,
                                                             rel=1e-12)


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0"])
def test_gguf_stats_equal_dequantised_truth(tmp_path: Path, qtype: str) -> None:
    m = make_gguf(tmp_path, "llama", qtype)
    fp = _fingerprint(m.path)
    _check_against_truth(fp, m)


def test_json_round_trip(tmp_path: Path) -> None:
    m = make_model(tmp_path, "qwen2", dtype="BF16")
    fp = _fingerprint(m.path)
    fp.save(tmp_path / "q.fp.json")
    back = Fingerprint.load(tmp_path / "q.fp.json")
    assert back.to_json() == json.loads(json.dumps(fp.to_json()))
    assert back.curve("attn.q") == fp.curve("attn.q")
    assert back.vector("attn.q_bias", 1) == fp.vector("attn.q_bias", 1)
    assert all(math.isfinite(v) for v in back.curve("attn.q") or [])


def test_format_2_is_written_format_1_is_read_newer_sketches_are_refused(
        tmp_path: Path) -> None:
    from modelprint.cli import main
    from modelprint.errors import FingerprintFormatError
    from modelprint.fingerprint.sketches import SKETCH_VERSION

    m = make_model(tmp_path, "llama", dtype="BF16")
    fp = _fingerprint(m.path)
    fp.save(tmp_path / "new.fp.json")
    doc = json.loads((tmp_path / "new.fp.json").read_text())
    assert doc["format"] == "modelprint.fingerprint/3"
    assert all("blake3" in t and "sha256" not in t for t in doc["tensors"])
    assert doc["sketches"]["version"] == SKETCH_VERSION and doc["sketches"]["projection"]
    # a /1 file from an older modelprint, without sketches and with sha256 tensor digests:
    # read, curves intact
    old = {k: v for k, v in doc.items() if k != "sketches"}
    old["format"] = "modelprint.fingerprint/1"
    old["tensors"] = [{**{k: v for k, v in t.items() if k != "blake3"}, "sha256": "ab" * 32}
                      for t in doc["tensors"]]
    (tmp_path / "old.fp.json").write_text(json.dumps(old))
    back = Fingerprint.load(tmp_path / "old.fp.json")
    assert back.curve("attn.q") == fp.curve("attn.q") and not back.sketches
    # sketches of a future version: refused, not misread
    doc["sketches"]["version"] = SKETCH_VERSION + 1
    (tmp_path / "future.fp.json").write_text(json.dumps(doc))
    with pytest.raises(FingerprintFormatError, match=r"sketch version .* re-create"):
        Fingerprint.load(tmp_path / "future.fp.json")
    assert main(["compare", str(tmp_path / "future.fp.json"), str(tmp_path / "new.fp.json")]) == 2


def test_a_fingerprint_without_the_optional_model_kind_is_read(tmp_path: Path) -> None:
    """``model.kind`` is optional in the schema; a file without it once raised a TypeError
    traceback from ``ModelInfo`` (found by benchmarks/fuzz, seed 91500000722). It is read,
    with an empty kind, and compares as before; a file without ``model.reference`` (required)
    is still refused with the file named."""
    from modelprint.cli import main
    from modelprint.errors import FingerprintFormatError

    m = make_model(tmp_path, "llama", dtype="BF16")
    _fingerprint(m.path).save(tmp_path / "full.fp.json")
    doc = json.loads((tmp_path / "full.fp.json").read_text())
    del doc["model"]["kind"]
    (tmp_path / "nokind.fp.json").write_text(json.dumps(doc))
    back = Fingerprint.load(tmp_path / "nokind.fp.json")
    assert back.model.kind == "" and back.model.reference == doc["model"]["reference"]
    assert main(["compare", str(tmp_path / "nokind.fp.json"),
                 str(tmp_path / "full.fp.json")]) == 1
    del doc["model"]["reference"]
    (tmp_path / "noref.fp.json").write_text(json.dumps(doc))
    with pytest.raises(FingerprintFormatError, match=r"model\.reference"):
        Fingerprint.load(tmp_path / "noref.fp.json")


def test_every_read_of_the_sketch_pass_counts_towards_releasing_mapped_pages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row runs and scattered row sets (embedding rows, sampled units) alike: with a release
    threshold of one byte, the source is asked to drop its mapped pages at least once per
    tensor the sketch pass reads, so resident pages never pile up over a model (scattered
    reads once went uncounted: 0.56 GB of mapped pages for a 1.2 GB model). The fingerprint
    is the same as without releases."""
    import modelprint.fingerprint.sketches as sketch_module
    from modelprint.sources import pages

    m = make_model(tmp_path, "llama", dtype="BF16")
    with open_source(str(m.path)) as src:
        plain = build_fingerprint(src).to_json()
    in_sketches = [False]
    touched: set[str] = set()
    calls: list[int] = []
    real_sketches = sketch_module.compute_sketches

    def sketches(*a: object, **k: object) -> object:
        in_sketches[0] = True
        try:
            return real_sketches(*a, **k)  # type: ignore[arg-type]
        finally:
            in_sketches[0] = False

    monkeypatch.setattr(sketch_module, "compute_sketches", sketches)
    monkeypatch.setattr(pages, "RELEASE_BYTES", 1)
    with open_source(str(m.path)) as src:
        for method in ("read_rows", "read_row_set"):
            real = getattr(src, method)

            def spy(name: str, *a: object, _real: object = real) -> object:
                if in_sketches[0]:
                    touched.add(name)
                return _real(name, *a)  # type: ignore[operator]

            monkeypatch.setattr(src, method, spy)
        monkeypatch.setattr(src, "release_pages",
                            lambda: calls.append(1) if in_sketches[0] else None)
        fp = build_fingerprint(src).to_json()
    assert len(touched) > 5 and len(calls) >= len(touched)
    for key in ("tensors", "curves", "sketches"):
        assert fp[key] == plain[key]


def test_a_library_entry_stored_before_format_3_still_knows_its_weights(tmp_path: Path) -> None:
    """``identify --weights`` asks whether a folder still holds the weights an entry was built
    from. An entry stored with sha256 tensor digests (format /2) cannot be compared digest by
    digest with a fresh BLAKE3 fingerprint, so the weight files' sha256 decide."""
    from modelprint.library.identify import same_weights

    m = make_model(tmp_path / "a", "llama", dtype="BF16")
    other = make_model(tmp_path / "b", "llama", dtype="BF16", seed=5)
    fresh, fresh_other = _fingerprint(m.path), _fingerprint(other.path)
    doc = fresh.to_json()
    doc["format"] = "modelprint.fingerprint/2"
    doc["tensors"] = [{**{k: v for k, v in t.items() if k != "blake3"}, "sha256": "cd" * 32}
                      for t in doc["tensors"]]
    stored = Fingerprint.from_json(doc)
    assert stored.tensors[0].digest == "sha256:" + "cd" * 32
    assert same_weights(fresh, stored) and not same_weights(fresh_other, stored)
    assert same_weights(fresh, fresh) and not same_weights(fresh_other, fresh)


@pytest.mark.parametrize("kind", ["BF16", "Q8_0"])
def test_sketches_on_the_hashing_threads_are_the_sketches_of_one_thread(
        tmp_path: Path, kind: str) -> None:
    """The Q/K projections run two at a time on the build's hashing threads; the sketch
    block (values and key order, i.e. the fingerprint's bytes) is the one-thread pass's."""
    from concurrent.futures import ThreadPoolExecutor

    from modelprint.arch import resolve
    from modelprint.fingerprint.sketches import compute_sketches, decode, projection_matrix

    m = (make_gguf(tmp_path, "llama", kind) if kind == "Q8_0"
         else make_model(tmp_path, "llama", dtype=kind))
    with open_source(str(m.path)) as src:
        arch, slots = resolve(src)
        alone = compute_sketches(src, arch, slots)
        with ThreadPoolExecutor(max_workers=2) as pool:
            pooled = compute_sketches(src, arch, slots, pool=pool)
    assert json.dumps(pooled) == json.dumps(alone)
    layers = {layer for _, layer, _ in m.roles if layer is not None}
    assert len(alone["projection"]) == 2 * len(layers) >= 4
    # and the projection is W^T R of the stored matrix (to float16's precision)
    q0 = np.asarray(m.roles[("attn.q", 0, None)], dtype=np.float64)
    want = q0.T @ projection_matrix(q0.shape[0])
    np.testing.assert_allclose(decode(pooled["projection"]["attn.q|0|-"]), want,
                               rtol=2e-2, atol=2e-3 * float(np.abs(want).max()))
