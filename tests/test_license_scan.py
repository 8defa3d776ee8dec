"""license.scan_repository: license texts recognised by content, copyright lines, claims, and
hostile files handled. Uses the real license texts of tests/data/licenses/ (see its README)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from modelprint.license import scan_repository
from modelprint.license.build_signatures import SOURCES
from modelprint.license.signatures import load_signatures

DATA = Path(__file__).parent / "data" / "licenses"

#: fixture file -> (license id, vendor) it must be recognised as (one entry per real text).
EXPECTED = {
    "apache-2.0.txt": ("apache-2.0", None),
    "llama2_community_license.txt": ("llama2", "meta"),
    "llama3_community_license.txt": ("llama3", "meta"),
    "llama3_1_community_license.txt": ("llama3.1", "meta"),
    "llama3_2_community_license.txt": ("llama3.2", "meta"),
    "qwen_tongyi_qianwen_license.txt": ("tongyi-qianwen", "alibaba"),
    "qwen_research_license.txt": ("tongyi-qianwen-research", "alibaba"),
    "gemma_terms_of_use.txt": ("gemma", "google"),
    "mistral_research_license.md": ("mrl", "mistral"),
    "deepseek_license_model.txt": ("deepseek", "deepseek"),
    "qwen_NOTICE.txt": ("mit", None),
}
TEXT_KINDS = ("license_text", "license_excerpt")
PROSE = textwrap.dedent("""\
    # Acme-7B

    Acme-7B is a language model trained from scratch by the Acme research group on a mixture
    of web text, code and mathematics. We release it to help researchers study how small
    models learn arithmetic. Evaluation results are in the table below, and the training
    recipe is described in our report. Please open an issue if something does not work.
    """)


def scan_dir(root: Path, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return scan_repository(files, metadata or {}, root)


def texts(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["kind"] in TEXT_KINDS]


def put(root: Path, rel: str, content: str | bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def test_every_signature_source_is_a_fixture_here() -> None:
    """The signatures were built from these files; every known license has a fixture."""
    assert {s["file"] for s in SOURCES} <= {p.name for p in DATA.iterdir()}
    assert {s.id for s in load_signatures()} >= {lid for lid, _ in EXPECTED.values()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_license_text_recognised_as_itself_only(tmp_path: Path, name: str) -> None:
    lid, vendor = EXPECTED[name]
    put(tmp_path, "COPYING.txt", (DATA / name).read_text(encoding="utf-8"))
    found = texts(scan_dir(tmp_path))
    ids = {f["license"] for f in found}
    assert lid in ids
    # siblings (Llama 3 / 3.1 / 3.2, Qwen / Qwen research) are told apart; nothing else fires,
    # apart from Apache's file notice which the Apache text contains as its appendix
    assert ids - {lid} <= ({"apache-2.0-notice"} if lid == "apache-2.0" else set())
    hit = next(f for f in found if f["license"] == lid)
    assert hit["vendor"] == vendor
    assert hit["kind"] == "license_text"
    assert hit["similarity"] > 0.9 and hit["coverage"] > 0.9
    assert hit["file"] == "COPYING.txt"


def _rewrap(text: str, width: int) -> str:
    """Same words, other layout: joined, re-cased, curly quotes, wrapped at ``width``."""
    flat = " ".join(text.split()).upper().replace('"', "\u201c")
    return "\n".join(textwrap.wrap(flat, width=width)) + "\n"


@pytest.mark.parametrize("name", ["llama3_1_community_license.txt", "qwen_research_license.txt",
                                  "deepseek_license_model.txt", "apache-2.0.txt"])
def test_rewrapped_recased_text_still_recognised(tmp_path: Path, name: str) -> None:
    lid, _ = EXPECTED[name]
    put(tmp_path, "terms", _rewrap((DATA / name).read_text(encoding="utf-8"), 37))
    found = {f["license"]: f for f in texts(scan_dir(tmp_path))}
    assert lid in found
    assert found[lid]["similarity"] > 0.9


@pytest.mark.parametrize("name", ["qwen_tongyi_qianwen_license.txt", "llama2_community_license.txt",
                                  "gemma_terms_of_use.txt", "mistral_research_license.md",
                                  "deepseek_license_model.txt"])
def test_partial_excerpt_inside_prose_found_at_its_line(tmp_path: Path, name: str) -> None:
    """A 250-word slice from the middle of a license, pasted into a README between prose."""
    lid, vendor = EXPECTED[name]
    ws = (DATA / name).read_text(encoding="utf-8").split()
    mid = len(ws) // 2
    excerpt = "\n".join(textwrap.wrap(" ".join(ws[mid:mid + 250]), 80))
    head = PROSE + "\n## Terms\n\n"
    put(tmp_path, "README.md", head + excerpt + "\n\n" + PROSE)
    found = texts(scan_dir(tmp_path))
    assert [f["vendor"] for f in found] == [vendor]
    f = found[0]
    first_line = head.count("\n") + 1
    assert first_line <= f["line"] <= first_line + 2
    assert f["end_line"] <= first_line + excerpt.count("\n") + 1
    assert f["kind"] == "license_excerpt" and f["coverage"] < 0.5
    assert f["license"] == lid or lid in str(f["alternatives"]) or f["similarity"] > 0.9


def _paths(*candidates: str) -> list[Path]:
    return [p for p in map(Path, candidates) if p.is_file()]


@pytest.mark.parametrize("path", _paths(
    "/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/MPL-2.0",
    "/usr/share/common-licenses/BSD", "/usr/share/common-licenses/LGPL-2.1",
    str(Path(__file__).parents[1] / "README.md"),
    str(Path(__file__).parents[1] / "src/modelprint/checks/base.py"),
), ids=lambda p: p.name)
def test_other_texts_are_not_taken_for_known_licenses(tmp_path: Path, path: Path) -> None:
    put(tmp_path, "LICENSE", path.read_text(encoding="utf-8", errors="replace"))
    assert texts(scan_dir(tmp_path)) == []


def test_one_liner_license_names_are_mentions_not_texts(tmp_path: Path) -> None:
    put(tmp_path, "run.py", "# Copyright (c) Meta Platforms, Inc. and affiliates.\n"
        "# This software may be used and distributed according to the terms of the Llama 2 "
        "Community License Agreement.\n\nimport os\n")
    result = scan_dir(tmp_path)
    assert texts(result) == []
    mention = [f for f in result["findings"] if f["kind"] == "license_mention"]
    assert [(m["license"], m["vendor"], m["line"]) for m in mention] == [("llama2", "meta", 2)]
    cr = [f for f in result["findings"] if f["kind"] == "copyright"]
    assert [(c["vendor"], c["line"]) for c in cr] == [("meta", 1)]


def test_planted_foreign_license_found_by_content_not_name(tmp_path: Path) -> None:
    """A Qwen license saved as docs/terms_of_use.txt in an 'Acme' repository."""
    put(tmp_path, "README.md", PROSE)
    put(tmp_path, "LICENSE", (DATA / "apache-2.0.txt").read_text(encoding="utf-8"))
    qwen = (DATA / "qwen_tongyi_qianwen_license.txt").read_text(encoding="utf-8")
    put(tmp_path, "docs/terms_of_use.txt", "Terms that apply to this model:\n\n" + qwen)
    result = scan_dir(tmp_path)
    by_file = {(f["file"], f["license"]): f for f in texts(result)}
    assert ("LICENSE", "apache-2.0") in by_file
    q = by_file[("docs/terms_of_use.txt", "tongyi-qianwen")]
    assert q["vendor"] == "alibaba" and q["title"] == "Tongyi Qianwen License Agreement"
    assert 3 <= q["line"] <= 5  # the license starts on line 3 of that file
    assert {f["path"] for f in result["files"]} == {"README.md", "LICENSE",
                                                    "docs/terms_of_use.txt"}


QWEN_HEADER = """\
# coding=utf-8
# Copyright 2024 The Qwen team, Alibaba Group and the HuggingFace Inc. team. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
\"\"\"PyTorch Acme model.\"\"\"
import torch
"""


def test_planted_qwen_copyright_header_in_python_file(tmp_path: Path) -> None:
    put(tmp_path, "modeling_acme.py", QWEN_HEADER)
    put(tmp_path, "tools/convert.py", "'''Helper.'''\n\n# (c) 2023 Alibaba Cloud\nx = 1\n")
    result = scan_dir(tmp_path)
    cr = sorted((f["file"], f["line"], f["vendor"]) for f in result["findings"]
                if f["kind"] == "copyright")
    assert cr == [("modeling_acme.py", 2, "alibaba"), ("tools/convert.py", 3, "alibaba")]
    header = next(f for f in result["findings"] if f["file"] == "modeling_acme.py"
                  and f["kind"] == "copyright")
    assert header["vendors"] == ["alibaba", "huggingface"]
    assert header["excerpt"].startswith("# Copyright 2024 The Qwen team")
    # the Apache file notice under it is vendor-neutral, and recognised as such
    assert {f["license"] for f in texts(result)} == {"apache-2.0-notice"}


@pytest.mark.parametrize("line,vendor", [
    ("Copyright (c) Meta Platforms, Inc. and affiliates.", "meta"),
    ("# Copyright 2024 Google LLC", "google"),
    ("// Copyright (c) Microsoft Corporation.", "microsoft"),
    ("Copyright 2023 Mistral AI and The HuggingFace Team", "mistral"),
    ("Copyright (c) 2023 DeepSeek", "deepseek"),
    ("# Copyright 2020 The HuggingFace Team. All rights reserved.", "huggingface"),
    ("Copyright (C) 2025 Huawei Technologies Co., Ltd. All rights reserved.", "huawei"),
    ("Copyright © 2024 Acme Robotics", None),
])
def test_copyright_vendors(tmp_path: Path, line: str, vendor: str | None) -> None:
    put(tmp_path, "x.py", line + "\n")
    cr = [f for f in scan_dir(tmp_path)["findings"] if f["kind"] == "copyright"]
    assert [(c["vendor"], c["line"]) for c in cr] == [(vendor, 1)]


@pytest.mark.parametrize("line", [
    "2. Grant of Copyright License. Subject to the terms and conditions of this",
    "Copyright [yyyy] [name of copyright owner]",
    '"Copyright" also means copyright-like laws that apply to other kinds of works.',
])
def test_prose_about_copyright_is_not_a_notice(tmp_path: Path, line: str) -> None:
    put(tmp_path, "NOTES", line + "\n")
    assert [f for f in scan_dir(tmp_path)["findings"] if f["kind"] == "copyright"] == []


CARD = """\
---
language: en
license: other
license_name: tongyi-qianwen
license_link: https://huggingface.co/Qwen/Qwen-7B/blob/main/LICENSE
base_model:
- Qwen/Qwen2-7B
- meta-llama/Llama-3.1-8B
tags: [text-generation]
---

# Acme-7B

This model is a fine-tuned version of [deepseek-ai/deepseek-llm-7b-base](https://huggingface.co/x).
"""


def test_card_front_matter_license_and_base_model(tmp_path: Path) -> None:
    put(tmp_path, "README.md", CARD)
    fs = scan_dir(tmp_path)["findings"]
    lic = [f for f in fs if f["kind"] == "card_license"]
    assert [(f["license"], f["vendor"], f["line"]) for f in lic] == [
        ("tongyi-qianwen", "alibaba", 3)]
    base = sorted((f["value"], f["vendor"], f["line"]) for f in fs if f["kind"] == "base_model")
    assert base == [("Qwen/Qwen2-7B", "alibaba", 6), ("deepseek-ai/deepseek-llm-7b-base",
                                                      "deepseek", 14),
                    ("meta-llama/Llama-3.1-8B", "meta", 6)]


def test_config_and_spdx_claims(tmp_path: Path) -> None:
    put(tmp_path, "config.json", json.dumps({
        "_name_or_path": "Qwen/Qwen2.5-7B", "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2"}, indent=2))
    put(tmp_path, "adapter_config.json", json.dumps({
        "base_model_name_or_path": "/home/me/ckpt", "peft_type": "LORA"}))
    put(tmp_path, "gen.py", "# SPDX-License-Identifier: Apache-2.0 OR MIT\n")
    fs = scan_dir(tmp_path)["findings"]
    origin = [(f["file"], f["value"], f["vendor"], f["line"]) for f in fs
              if f["kind"] == "base_model"]
    assert origin == [("config.json", "Qwen/Qwen2.5-7B", "alibaba", 2)]  # local paths ignored
    arch = [f for f in fs if f["kind"] == "architecture"]
    assert [(a["value"], a["vendor"]) for a in arch] == [("Qwen2ForCausalLM", "alibaba")]
    spdx = sorted((f["license"], f["vendor"]) for f in fs if f["kind"] == "spdx")
    assert spdx == [("Apache-2.0", None), ("MIT", None)]


def test_gguf_metadata_claims() -> None:
    meta = {
        "general.license": "llama3.1", "general.organization": "Meta Llama",
        "general.base_model.count": 1, "general.base_model.0.name": "Qwen2.5 7B",
        "general.base_model.0.organization": "Qwen",
        "general.base_model.0.repo_url": "https://huggingface.co/Qwen/Qwen2.5-7B",
        "general.source.url": "https://huggingface.co/deepseek-ai/DeepSeek-V3",
        "general.name": "Whatever", "general.base_model.1.name": "ignored (count is 1)",
    }
    fs = scan_repository([], meta, None)["findings"]
    got = sorted((f["kind"], f["vendor"], f["key"]) for f in fs)
    assert got == [("base_model", "alibaba", "general.base_model.0"),
                   ("metadata_license", "meta", "general.license"),
                   ("organization", "meta", "general.organization"),
                   ("source", "deepseek", "general.source.url")]
    assert all(f["file"] == "<metadata>" and f["line"] is None for f in fs)


# -- hostile input -----------------------------------------------------------------------------

def test_hostile_files_do_not_crash_and_are_reported(tmp_path: Path) -> None:
    qwen = (DATA / "qwen_tongyi_qianwen_license.txt").read_text(encoding="utf-8")
    put(tmp_path, "model.bin.txt", b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 64)
    put(tmp_path, "LICENSE", b"\xff\xfe\xfa garbage \xc3\x28 " + qwen.encode() + b"\xed\xa0\x80")
    put(tmp_path, "NOTICE.utf16", ("Copyright 2024 Google LLC\n").encode("utf-16"))
    put(tmp_path, "README.md", "---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b]\n"
        "d: [*c, *c, *c, *c, *c, *c]\nlicense: [*c]\n---\nhi\n")
    put(tmp_path, "config.json", '{"_name_or_path": ' * 5000)
    put(tmp_path, "page.html", "<html><body><script>Copyright 2024 Google LLC</script>"
        "<p>Copyright 2023 <b>Mistral AI</b> <img src=x onerror=alert(1)></p><p>unclosed <div"
        "</body>")
    put(tmp_path, "empty.txt", "")
    (tmp_path / "subdir.md").mkdir()
    files = [*sorted(tmp_path.rglob("*")), tmp_path / "missing.txt"]
    result = scan_repository(files, {"general.license": ["weird", {"x": 1}], "general.author": 7},
                             tmp_path)
    json.dumps(result)  # JSON-able
    by_path = {f["path"]: f for f in result["files"]}
    assert by_path["model.bin.txt"]["kind"] == "binary" and not by_path["model.bin.txt"]["scanned"]
    assert by_path["missing.txt"]["note"] == "missing"
    assert by_path["subdir.md"]["note"] == "not a regular file"
    assert "undecodable" in by_path["LICENSE"]["note"]
    fs = result["findings"]
    assert any(f["license"] == "tongyi-qianwen" and f["file"] == "LICENSE" for f in texts(result))
    assert any(f["kind"] == "copyright" and f["vendor"] == "google" and f["file"] ==
               "NOTICE.utf16" for f in fs)
    html = [f for f in fs if f["file"] == "page.html"]
    # script content is not visible text; the visible notice is found with its source line
    assert [(f["kind"], f["vendor"]) for f in html] == [("copyright", "mistral")]
    assert all(len(f["excerpt"]) <= 200 for f in fs)


def test_huge_file_is_capped_and_fast(tmp_path: Path) -> None:
    filler = ("lorem ipsum dolor sit amet " * 40 + "\n") * 2500   # ~2.7 MB
    qwen = (DATA / "qwen_tongyi_qianwen_license.txt").read_text(encoding="utf-8")
    put(tmp_path, "README.md", "Copyright 2024 Google LLC\n" + filler + qwen)
    result = scan_dir(tmp_path)
    entry = result["files"][0]
    assert entry["size"] > 2 * 1024 * 1024 and entry["scanned"]
    assert "first 2 MiB" in entry["note"]
    assert [f["vendor"] for f in result["findings"]] == ["google"]  # beyond the cap: unseen


def test_excerpts_are_raw_single_lines_without_control_characters(tmp_path: Path) -> None:
    put(tmp_path, "x.py", "# Copyright 2024 <b>Qwen</b> team \x1b[31mred\x1b[0m " + "y" * 400
        + "\n# Copyright 2024 <script>alert(1)</script> Alibaba Cloud\n")
    fs = [f for f in scan_dir(tmp_path)["findings"] if f["kind"] == "copyright"]
    assert [f["line"] for f in fs] == [2]  # a 400+ character line is no copyright notice
    assert fs[0]["excerpt"] == "# Copyright 2024 <script>alert(1)</script> Alibaba Cloud"
    assert not re.search(r"[\x00-\x1f]", json.dumps(fs).encode().decode("unicode_escape"))


def test_file_entries_record_path_size_and_sha256(tmp_path: Path) -> None:
    import hashlib

    p = put(tmp_path, "a/NOTICE", "hello\n")
    entry = scan_dir(tmp_path)["files"][0]
    assert entry["path"] == "a/NOTICE" and entry["size"] == 6
    assert entry["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
