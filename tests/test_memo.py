"""modelprint.memo: per-file and per-content memos of token strings in the cache directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelprint import memo
from modelprint.fingerprint.tokens import canonical_tokens, remembered_canonical_tokens
from modelprint.sources._files import read_vocabulary


def _tokenizer(folder: Path, tokens: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    path.write_text(json.dumps({"model": {"vocab": {t: i for i, t in enumerate(tokens)}}}))
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_vocabulary_is_read_once_and_again_when_the_file_changes(tmp_path: Path,
                                                                   _cache: Path) -> None:
    tok = _tokenizer(tmp_path / "m", ["a", "Ġb", "c"])
    assert read_vocabulary(tmp_path / "m") == ["a", "Ġb", "c"]
    (entry,) = (_cache / "memo" / "vocabulary").iterdir()
    assert json.loads(entry.read_text()) == ["a", "Ġb", "c"]
    # the memo answers (the file itself is not parsed again) ...
    entry.write_text(json.dumps(["x", "y", "z"]))
    assert read_vocabulary(tmp_path / "m") == ["x", "y", "z"]
    # ... until the file is rewritten: a new signature, a new entry
    _tokenizer(tmp_path / "m", ["d", "e", "f", "g"])
    os.utime(tok, ns=(tok.stat().st_atime_ns, tok.stat().st_mtime_ns + 1_000_000))
    assert read_vocabulary(tmp_path / "m") == ["d", "e", "f", "g"]


@pytest.mark.parametrize("junk", ["not json", '{"a": 1}', "[1, 2]", '["a", null]'])
def test_a_damaged_memo_is_ignored_and_rewritten(tmp_path: Path, _cache: Path,
                                                 junk: str) -> None:
    _tokenizer(tmp_path / "m", ["a", "b"])
    read_vocabulary(tmp_path / "m")
    (entry,) = (_cache / "memo" / "vocabulary").iterdir()
    entry.write_text(junk)
    assert read_vocabulary(tmp_path / "m") == ["a", "b"]
    assert json.loads(entry.read_text()) == ["a", "b"]


def test_canonical_spellings_are_remembered_by_content() -> None:
    vocab = ["Ġthe", "▁the", "<0x41>", "plain"]
    assert remembered_canonical_tokens(vocab) == canonical_tokens(vocab) == \
        [" the", " the", "A", "plain"]
    key = memo.content_key(vocab)
    assert memo.load_strings("canonical-tokens", key, 10) == [" the", " the", "A", "plain"]
    # a different list (even a prefix) is a different key
    assert memo.content_key(vocab[:3]) != key and memo.content_key(["Ġthe▁the"]) != \
        memo.content_key(["Ġthe", "▁the"])
    # a stored list of the wrong length is not used
    memo.store_strings("canonical-tokens", key, ["x"])
    assert remembered_canonical_tokens(vocab) == [" the", " the", "A", "plain"]


def test_an_unwritable_cache_only_costs_the_recomputation(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(blocker / "cache"))
    _tokenizer(tmp_path / "m", ["a", "b"])
    assert read_vocabulary(tmp_path / "m") == ["a", "b"]   # no memo could be made or read
    assert memo.load_strings("vocabulary", "k", 10) is None
