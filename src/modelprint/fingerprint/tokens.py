"""Token strings in one spelling, so vocabularies of different tokenizer families can meet.

The alignment checks match two models' embeddings over the tokens both vocabularies hold, by
string (AWM, arXiv 2510.06738). Tokenizers spell the same text differently: GPT-2-style
byte-level BPE (Llama 3, Qwen, SmolLM2) writes every byte as a printable stand-in ("Ġ" for a
space, "Ċ" for a newline), SentencePiece (Llama 2, Gemma, Mistral) writes a space as "▁" and
unencodable bytes as "<0x0A>". Compared raw, SmolLM2 and Gemma 3 share 61 of their 1024
sampled tokens; in the spelling below, 176. :func:`canonical_token` decodes both to the text a
token stands for:

* a token all of whose characters are byte-level stand-ins is decoded to its bytes and then
  to UTF-8 -- always when one stand-in is not a plain character (code point >= 256, like
  "Ġ"; invalid sequences, i.e. part of a multi-byte character, keep a replacement character,
  so they only match each other), else only when the bytes are valid UTF-8 ("Ã©" -> "é",
  while a SentencePiece "é" stays "é");
* "<0xHH>" byte tokens become that byte (Latin-1);
* otherwise "▁" becomes a space.

WordPiece ("##ing") and plain vocabularies are unchanged. The map is applied until nothing
changes, so it is idempotent: a canonical token is its own canonical form.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import cache, lru_cache
from types import MappingProxyType

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPIECE_SPACE = "\u2581"


@cache
def _byte_stand_ins() -> dict[str, int]:
    """GPT-2's ``bytes_to_unicode`` inverted: printable stand-in character -> byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = dict(zip(printable, printable, strict=True))
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return {chr(c): b for b, c in chars.items()}


@cache
def _byte_level() -> re.Pattern[str]:
    """Matches a token made only of byte-level stand-ins."""
    return re.compile("[" + "".join(re.escape(c) for c in _byte_stand_ins()) + "]+")


@cache
def _byte_translation() -> dict[int, int]:
    """``str.translate`` table: stand-in -> the Latin-1 character of its byte."""
    return {ord(c): b for c, b in _byte_stand_ins().items()}


def canonical_token(token: str) -> str:
    """The text ``token`` stands for, in one spelling across tokenizer families."""
    for _ in range(len(token) + 1):  # each step shortens the token or leaves it as it is
        if token.isascii() and not token.startswith("<0x"):
            # printable ASCII stands for itself in byte-level BPE; no "▁": nothing to change
            return token
        step = _decode_once(token)
        if step == token:
            break
        token = step
    return token


def canonical_tokens(vocab: list[str]) -> list[str]:
    """:func:`canonical_token` of every token, with the two common cases inline.

    A vocabulary has up to a few hundred thousand entries (Gemma 3: 262,144) and one function
    call per token was ~1 s of a Gemma fingerprint. Plain ASCII stands for itself; a token
    with "▁" (and not a ``<0xHH>`` byte token) is SentencePiece, whose canonical form is the
    "▁" -> " " replacement (a space is no byte-level stand-in, so nothing more applies); the
    rest goes through :func:`canonical_token`. The test suite checks the equality.
    """
    space = _SPIECE_SPACE
    return [tok if tok.isascii() and not tok.startswith("<0x")
            else tok.replace(space, " ") if space in tok and not tok.startswith("<0x")
            else canonical_token(tok)
            for tok in vocab]


def remembered_canonical_tokens(vocab: list[str]) -> list[str]:
    """:func:`canonical_tokens`, remembered across processes by the vocabulary's content
    (:mod:`modelprint.memo`; measured 0.06 s for SmolLM2's 49k tokens, 0.16 s for Gemma 3's
    262k)."""
    from modelprint.memo import content_key, load_strings, store_strings

    key = content_key(vocab)
    known = load_strings("canonical-tokens", key, len(vocab))
    if known is not None and len(known) == len(vocab):
        return known
    out = canonical_tokens(vocab)
    store_strings("canonical-tokens", key, out)
    return out


def _decode_once(token: str) -> str:
    m = _BYTE_TOKEN.fullmatch(token)
    if m:
        return bytes([int(m.group(1), 16)]).decode("latin-1")
    if _SPIECE_SPACE in token:  # "▁" is no byte-level stand-in: a SentencePiece token
        return token.replace(_SPIECE_SPACE, " ")
    if token and _byte_level().fullmatch(token):
        # one C-level pass each (a generator per character was ~0.3 s of a 49k vocabulary)
        raw = token.translate(_byte_translation()).encode("latin-1")
        if max(token) >= "\u0100":
            return raw.decode("utf-8", "replace")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return token
    return token


def first_ids(vocab: list[str]) -> Mapping[str, int]:
    """Canonical token string -> the first id spelling it (later duplicates are ignored).

    Read-only and memoised by content: one audit asks for the same vocabularies several
    times (the wide alignment, the activation probe), and canonicalising a 50k-262k
    vocabulary costs 0.2-1 s each time."""
    key = (tuple(vocab) if set(map(type, vocab)) <= {str}   # the usual case, no call per token
           else tuple(v if isinstance(v, str) else "" for v in vocab))
    with _FIRST_IDS_LOCK:     # checks run side by side: one of them builds it, once
        return _first_ids(key)


_FIRST_IDS_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _first_ids(vocab: tuple[str, ...]) -> Mapping[str, int]:
    canon = remembered_canonical_tokens(list(vocab))
    # built back to front so that the first id of a spelling is the one that stays: one
    # C-level pass (a Python loop was 0.23 s of a warm Gemma 3 vs SmolLM2 compare)
    out = dict(zip(reversed(canon), range(len(canon) - 1, -1, -1), strict=True))
    out.pop("", None)
    return MappingProxyType(out)
