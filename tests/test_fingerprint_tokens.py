"""Canonical token spelling: byte-level BPE and SentencePiece vocabularies meet."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelprint.fingerprint.sketches import token_sample
from modelprint.fingerprint.tokens import canonical_token, canonical_tokens, first_ids
from modelprint.refs import parse_reference
from modelprint.sources import open_source


@pytest.mark.parametrize(("token", "text"), [
    ("Ġthe", " the"), ("▁the", " the"), ("ĊĊĠĠĠ", "\n\n   "), ("<0x0A>", "\n"),
    ("the", "the"), ("##ing", "##ing"), ("▁", " "), ("Ã©", "é"), ("<0x41>", "A"),
    ("<pad>", "<pad>"), ("Ġ日本", "Ġ日本"),  # not all byte stand-ins: left as it is
])
def test_spellings(token: str, text: str) -> None:
    assert canonical_token(token) == text


@given(st.text(max_size=12))
def test_idempotent(token: str) -> None:
    once = canonical_token(token)
    assert canonical_token(once) == once


_PIECES = st.sampled_from(["▁", "Ġ", "Ċ", "<0x", "0A>", "<0x41>", "Ã", "©", "é", "日", " ",
                           "a", "##", "<pad>"])


@given(st.lists(st.one_of(st.text(max_size=8),
                          st.lists(_PIECES, max_size=5).map("".join)), max_size=30))
def test_vocabulary_at_once_equals_token_by_token(vocab: list[str]) -> None:
    """The inline fast paths of canonical_tokens give what canonical_token gives."""
    assert canonical_tokens(vocab) == [canonical_token(t) for t in vocab]


@given(st.lists(st.sampled_from(["Ġthe", " the", "▁the", "a", "", "Ã©", "é", "<0x41>", "A"]),
                max_size=20))
def test_first_ids_maps_each_spelling_to_its_first_id(vocab: list[str]) -> None:
    """The probe and the wide alignment read a token by its first id; empty spellings are
    never looked up."""
    want: dict[str, int] = {}
    for i, tok in enumerate(vocab):
        want.setdefault(canonical_token(tok), i)
    want.pop("", None)
    assert dict(first_ids(vocab)) == want


def test_sample_keeps_the_first_id_of_a_canonical_form() -> None:
    vocab = ["Ġthe", "▁the", "x"]
    assert dict(token_sample(vocab)) == {" the": 0, "x": 2}


@pytest.mark.real
def test_smollm2_and_gemma3_share_enough_sampled_tokens(smollm2_gguf: Path,
                                                        gemma3_gguf: Path) -> None:
    """Raw strings share 61 of 1024 samples (below the 64 the alignment needs); canonical
    ones share more than twice that, so the alignment checks apply to this real pair."""
    samples = []
    for path in (smollm2_gguf, gemma3_gguf):
        vocab = open_source(parse_reference(str(path))).vocabulary()
        assert vocab
        samples.append({t for t, _ in token_sample(vocab)})
    assert len(samples[0] & samples[1]) >= 128
