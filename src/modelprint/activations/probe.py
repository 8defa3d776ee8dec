"""The probe text both models read, cut into tokens that both vocabularies hold.

phi_MATCH compares two models' MLP activations *on the same inputs*, so both models must read
the same token strings. modelprint ships one fixed probe (``data/probe.txt``: plain English
prose, a little arithmetic and a short Python function, written for this package and released
with it) so that every audit of a pair reads the same input and results are reproducible.

Tokenisation is a greedy longest match of the probe text over the canonical token strings
(:func:`~modelprint.fingerprint.tokens.canonical_token`: byte-level "Ġthe" and SentencePiece
"▁the" are both " the") that *both* vocabularies hold; when the vocabularies are equal it is a
greedy match over that one vocabulary. This is not either tokenizer's own segmentation (no BPE
merges are applied), but a model reads any sequence of its own tokens; what matters here is
that the two models read the same strings in the same order. Characters no shared token covers
are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources

from modelprint.fingerprint.tokens import first_ids

#: Longest token string tried by the greedy match (longer shared tokens are rare in prose).
MAX_TOKEN_CHARS = 24


@cache
def probe_text() -> str:
    """The shipped probe text (about 480 words)."""
    return (resources.files("modelprint.activations") / "data" / "probe.txt").read_text("utf-8")


@dataclass(frozen=True)
class ProbeTokens:
    """The probe as token ids of each model (same strings, same order)."""

    ids_a: list[int]
    ids_b: list[int]
    strings: list[str]
    #: Probe characters that no shared token covered (skipped).
    skipped_chars: int
    #: Canonical token strings both vocabularies hold.
    shared_vocabulary: int
    same_vocabulary: bool

    def __len__(self) -> int:
        return len(self.strings)


def greedy_tokens(text: str, vocab: Collection[str], limit: int | None = None
                  ) -> tuple[list[str], int]:
    """Greedy longest-match segmentation of ``text`` over ``vocab``; (tokens, skipped chars).
    With ``limit``, stops after that many tokens (skipped characters counted up to there)."""
    longest = min(MAX_TOKEN_CHARS, max(map(len, vocab), default=0))
    out: list[str] = []
    skipped = 0
    pos = 0
    while pos < len(text) and (limit is None or len(out) < limit):
        for n in range(min(longest, len(text) - pos), 0, -1):
            piece = text[pos:pos + n]
            if piece in vocab:
                out.append(piece)
                pos += n
                break
        else:
            skipped += 1
            pos += 1
    return out, skipped


def shared_probe(vocab_a: list[str], vocab_b: list[str], limit: int,
                 text: str | None = None) -> ProbeTokens:
    """The first ``limit`` tokens of the probe (or ``text``) over the shared vocabulary."""
    same = vocab_a == vocab_b
    ids_a = first_ids(vocab_a)
    ids_b = ids_a if same else first_ids(vocab_b)
    shared: Collection[str] = ids_a if same else ids_a.keys() & ids_b.keys()
    strings, skipped = greedy_tokens(probe_text() if text is None else text, shared, limit)
    return ProbeTokens([ids_a[s] for s in strings], [ids_b[s] for s in strings], strings,
                       skipped, len(shared), same)
