"""The ``license`` check on documents built with scan_repository (no weights needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelprint.arch.base import ArchInfo
from modelprint.checks import get_check
from modelprint.checks.base import CONTEXT, ModelView
from modelprint.fingerprint.model import Fingerprint, ModelInfo
from modelprint.license import scan_repository

DATA = Path(__file__).parent / "data" / "licenses"
CHECK = get_check("license")
QWEN_LICENSE = (DATA / "qwen_tongyi_qianwen_license.txt").read_text(encoding="utf-8")
APACHE = (DATA / "apache-2.0.txt").read_text(encoding="utf-8")
CARD = "---\nlicense: apache-2.0\n---\n# Acme-7B\n\nTrained from scratch by Acme.\n"


def repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def view(root: Path | None, metadata: dict[str, Any] | None = None,
         reference: str = "local") -> ModelView:
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root else []
    docs = scan_repository(files, metadata or {}, root)
    docs = json.loads(json.dumps(docs))  # as stored in a *.fp.json
    arch = ArchInfo(family="llama", num_layers=2, hidden_size=8, num_heads=2, num_kv_heads=1,
                    head_dim=4)
    return ModelView(Fingerprint(model=ModelInfo(reference=reference, kind="directory"),
                                 architecture=arch, documents=docs))


@pytest.fixture()
def qwen_reference(tmp_path: Path) -> ModelView:
    """A reference whose documents show Qwen: its license and GGUF organisation."""
    root = repo(tmp_path / "qwen", {"LICENSE": QWEN_LICENSE,
                                    "README.md": "---\nlicense: other\nlicense_name: "
                                                 "tongyi-qianwen\n---\n# Qwen-7B\n"})
    return view(root, {"general.organization": "Qwen"})


ACME = {"general.organization": "Acme AI"}


def test_planted_qwen_license_indicates_derivation(tmp_path: Path,
                                                   qwen_reference: ModelView) -> None:
    cand = view(repo(tmp_path / "cand", {"README.md": CARD, "LICENSE": APACHE,
                                         "legal/terms.txt": "Terms:\n\n" + QWEN_LICENSE}), ACME)
    ev = CHECK.compute(cand, qwen_reference, {})
    assert ev.strength == CONTEXT and ev.applicable
    assert ev.indicates_derivation is True
    assert ev.details["claimed_vendor"] == "acme ai"
    assert ev.details["reference_vendor"] == "alibaba"
    hit = [f for f in ev.details["findings"] if f["links_reference"]]
    assert [(f["file"], f["kind"], f["vendor"]) for f in hit] == [
        ("legal/terms.txt", "license_text", "alibaba")]
    assert hit[0]["line"] == 3 and hit[0]["excerpt"]
    assert "legal/terms.txt:3" in ev.summary and "not of weight reuse" in ev.summary
    assert "not weight reuse" in CHECK.description and "Pangu" in CHECK.description
    json.dumps(ev.to_json())


def test_clean_candidate_does_not_indicate(tmp_path: Path, qwen_reference: ModelView) -> None:
    cand = view(repo(tmp_path / "cand", {
        "README.md": CARD, "LICENSE": APACHE,
        "modeling_acme.py": "# Copyright 2025 Acme AI. All rights reserved.\nimport torch\n",
    }), ACME)
    ev = CHECK.compute(cand, qwen_reference, {})
    assert ev.applicable and ev.indicates_derivation is False
    assert ev.score == 0.0
    assert ev.details["findings"] == [] and ev.details["scanned_files"] == 3
    assert "Alibaba" in ev.summary


def test_pangu_like_code_header_indicates_with_file_and_line(tmp_path: Path,
                                                             qwen_reference: ModelView) -> None:
    header = ("# coding=utf-8\n# Copyright 2024 The Qwen team, Alibaba Group and the "
              "HuggingFace Inc. team. All rights reserved.\n\nimport torch\n")
    cand = view(repo(tmp_path / "cand", {"README.md": CARD, "modeling_pangu.py": header}),
                {"general.organization": "Huawei"})
    ev = CHECK.compute(cand, qwen_reference, {})
    assert ev.indicates_derivation is True
    assert ev.details["claimed_vendor"] == "huawei"
    (hit,) = [f for f in ev.details["findings"] if f["links_reference"]]
    assert (hit["file"], hit["line"], hit["kind"]) == ("modeling_pangu.py", 2, "copyright")


def test_transformers_boilerplate_copyright_is_not_a_link(tmp_path: Path) -> None:
    """Hugging Face's copyright heads most transformers modelling files: not a sign of origin
    even when the reference is a Hugging Face model."""
    ref = view(None, {"general.organization": "HuggingFaceTB", "general.license": "apache-2.0"})
    cand = view(repo(tmp_path / "cand", {
        "modeling.py": "# Copyright 2020 The HuggingFace Team. All rights reserved.\n",
        "README.md": CARD}), ACME)
    ev = CHECK.compute(cand, ref, {})
    assert ev.details["reference_vendor"] == "huggingface"
    assert ev.indicates_derivation is False
    assert [f["links_reference"] for f in ev.details["findings"]] == [False]


def test_base_model_naming_the_reference_indicates_even_for_same_vendor(tmp_path: Path) -> None:
    ref = view(None, {"general.license": "tongyi-qianwen"}, reference="hf:Qwen/Qwen2-7B")
    card = "---\nlicense: apache-2.0\nbase_model: Qwen/Qwen2-7B\n---\n# Qwen2-7B-Chat-Acme\n"
    cand = view(repo(tmp_path / "cand", {"README.md": card}), reference="hf:Qwen/Qwen2-7B-Chat")
    ev = CHECK.compute(cand, ref, {})
    assert ev.details["claimed_vendor"] == ev.details["reference_vendor"] == "alibaba"
    assert ev.indicates_derivation is True
    (hit,) = [f for f in ev.details["findings"] if f["names_reference"]]
    assert (hit["file"], hit["line"]) == ("README.md", 3)


def test_same_vendor_without_naming_gives_no_information(tmp_path: Path,
                                                         qwen_reference: ModelView) -> None:
    cand = view(repo(tmp_path / "cand", {"LICENSE": QWEN_LICENSE}),
                {"general.organization": "Qwen"})
    ev = CHECK.compute(cand, qwen_reference, {})
    assert ev.applicable and ev.indicates_derivation is None
    assert "both come from Alibaba" in (ev.reason or "")


def test_claimed_vendor_option_overrides_metadata(tmp_path: Path,
                                                  qwen_reference: ModelView) -> None:
    cand = view(repo(tmp_path / "cand", {"LICENSE": QWEN_LICENSE}), ACME)
    assert CHECK.compute(cand, qwen_reference, {}).indicates_derivation is True
    ev = CHECK.compute(cand, qwen_reference, {"claimed_vendor": "Qwen"})
    assert ev.indicates_derivation is None
    assert ev.details["claimed_vendor_source"] == "option claimed_vendor"


def test_unknown_claimed_vendor_still_flags_the_reference_vendor(tmp_path: Path,
                                                                 qwen_reference: ModelView
                                                                 ) -> None:
    cand = view(repo(tmp_path / "cand", {"NOTICE": QWEN_LICENSE}))
    ev = CHECK.compute(cand, qwen_reference, {})
    assert ev.details["claimed_vendor"] is None
    assert ev.indicates_derivation is True


def test_threshold_applies_to_license_text_similarity(tmp_path: Path,
                                                      qwen_reference: ModelView) -> None:
    """An edited copy (every 12th word changed) matches with a similarity below 1; the
    threshold option decides whether it counts."""
    ws = QWEN_LICENSE.split()
    edited = " ".join("zzz" if i % 12 == 5 else w for i, w in enumerate(ws))
    cand = view(repo(tmp_path / "cand", {"terms.md": edited}), ACME)
    (text,) = [f for f in cand.fingerprint.documents["findings"]
               if f["kind"].startswith("license_")]
    sim = text["similarity"]
    assert 0.5 < sim < 0.95
    assert CHECK.compute(cand, qwen_reference, {"threshold": sim - 0.02}).indicates_derivation
    ev = CHECK.compute(cand, qwen_reference, {"threshold": min(1.0, sim + 0.02)})
    assert ev.indicates_derivation is False


def test_not_applicable_without_repository_files(tmp_path: Path,
                                                 qwen_reference: ModelView) -> None:
    empty = view(None)
    ev = CHECK.compute(empty, qwen_reference, {})
    assert not ev.applicable and ev.indicates_derivation is None
    assert "no repository files" in (ev.reason or "")
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "blob.dat").write_bytes(b"\x00" * 100)
    ev = CHECK.compute(view(binary), qwen_reference, {})
    assert not ev.applicable and "readable text" in (ev.reason or "")
    no_docs = ModelView(Fingerprint(model=ModelInfo(reference="x.fp.json", kind="fingerprint"),
                                    architecture=empty.fingerprint.architecture))
    ev = CHECK.compute(no_docs, qwen_reference, {})
    assert not ev.applicable and "not scanned" in (ev.reason or "")


def test_gguf_metadata_alone_is_enough_to_apply() -> None:
    smol = view(None, {"general.organization": "HuggingFaceTB", "general.license": "apache-2.0"})
    gemma = view(None, {"general.license": "gemma"})
    ev = CHECK.compute(smol, gemma, {})
    assert ev.applicable and ev.indicates_derivation is False
    assert ev.details["reference_vendor"] == "google"
    ev = CHECK.compute(gemma, smol, {})
    assert ev.indicates_derivation is False
    assert [f["vendor"] for f in ev.details["findings"]] == ["google"]  # foreign, not the ref's


def test_options_are_the_declared_ones() -> None:
    assert set(CHECK.default_options) == {"claimed_vendor", "reference_vendor", "threshold"}
    assert CHECK.strength == CONTEXT and CHECK.name == "license"
