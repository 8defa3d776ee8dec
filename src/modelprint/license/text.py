"""Reading repository files as hostile text, and turning text into comparable word shingles.

Repository files come from whoever published the model: they may be binary, huge, in a broken
encoding or HTML pages saved from a website. Nothing here executes or interprets them beyond
decoding bytes and stripping HTML tags, every read is capped, and every decoding error is
tolerated (replacement characters) rather than raised.

Text is compared after normalisation (Unicode NFKC, case folded, punctuation and whitespace
dropped), as overlapping 5-word *shingles* hashed to 32 bits. Re-wrapping, re-indenting,
changing case or quotes leaves the shingles unchanged, so a license is recognised by its
content, not by its layout or file name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

#: Bytes read from one file for analysis (the sha256 still covers the whole file).
MAX_READ_BYTES = 2 * 1024 * 1024
#: Files larger than this are listed with their size but not hashed (hashing is I/O).
MAX_HASH_BYTES = 512 * 1024 * 1024
#: Words per shingle. Five words are specific enough that unrelated prose rarely shares one,
#: short enough that a re-worded sentence only loses the shingles that touch the change.
SHINGLE_WORDS = 5
#: A shingle hash is kept in a signature when ``hash % SAMPLE_MOD == 0``. The same rule applies
#: to every text, so a sampled document can be compared with a sampled signature (an estimate
#: of containment that also works for excerpts).
SAMPLE_MOD = 4

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head"}
_HTML_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
               "table", "section", "article", "pre", "blockquote", "hr", "dt", "dd"}


@dataclass
class TextFile:
    """A decoded file: its lines (1-based numbers of the *source* file) and how it was read."""

    lines: list[tuple[int, str]]
    kind: str                       # "text" | "html"
    truncated: bool = False
    replaced: int = 0               # undecodable bytes replaced by U+FFFD

    def text(self) -> str:
        return "\n".join(t for _, t in self.lines)


def sha256_file(path: Path, size: int) -> str | None:
    """Streaming sha256, or None for files above :data:`MAX_HASH_BYTES`."""
    if size > MAX_HASH_BYTES:
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def looks_binary(data: bytes) -> bool:
    """NUL bytes early in a file mean binary (weights, images, archives); text never has them."""
    head = data[:8192]
    return bool(b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")))


def decode(data: bytes) -> tuple[str, int]:
    """Bytes to str without ever failing: UTF-8, undecodable bytes replaced. A UTF-16 BOM is
    believed only when the bytes do not read as UTF-8 text (ASCII in UTF-16 is half NULs,
    CJK in UTF-16 is invalid UTF-8): a fake BOM in front of UTF-8 must not turn the text
    into CJK noise."""
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and (
            text.count("\x00") > 0.1 * len(text) or bad > 0.05 * len(text)):
        try:
            return data[:len(data) - len(data) % 2].decode("utf-16"), 0
        except UnicodeDecodeError:
            pass
    return text, bad


def read_text(path: Path, name: str | None = None) -> TextFile | None:
    """The file's text lines, or None when it is binary or mostly undecodable."""
    with path.open("rb") as fh:
        data = fh.read(MAX_READ_BYTES + 1)
    truncated = len(data) > MAX_READ_BYTES
    data = data[:MAX_READ_BYTES]
    if looks_binary(data):
        return None
    text, replaced = decode(data)
    if text and replaced > 0.3 * len(text):
        return None
    name = (name or path.name).lower()
    if name.endswith((".html", ".htm", ".xhtml")) or _starts_like_html(text):
        return TextFile(lines=html_lines(text), kind="html", truncated=truncated,
                        replaced=replaced)
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines())]
    return TextFile(lines=lines, kind="text", truncated=truncated, replaced=replaced)


def _starts_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html"))


class _HTMLText(HTMLParser):
    """Visible text of an HTML page with the source line of each piece (tags are dropped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: dict[int, list[str]] = {}
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self._skip += 1
        elif tag in _HTML_BLOCK:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _HTML_BLOCK:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._emit(data)

    def _emit(self, data: str) -> None:
        line = self.getpos()[0]
        for i, part in enumerate(data.split("\n")):
            self.out.setdefault(line + i, []).append(part if part else " ")


def html_lines(text: str) -> list[tuple[int, str]]:
    """Visible lines of an HTML document, numbered by the source line they start on."""
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # html.parser is lenient; anything it still rejects is kept as is
        return [(i + 1, line) for i, line in enumerate(text.splitlines())]
    lines = []
    for num in sorted(parser.out):
        joined = " ".join("".join(parser.out[num]).split())
        if joined:
            lines.append((num, joined))
    return lines


def normalise(text: str) -> str:
    """NFKC, case-folded, curly quotes straightened (used for words and for titles)."""
    return unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()


def words(text: str) -> list[str]:
    """The words of ``text`` after :func:`normalise`; punctuation and whitespace vanish."""
    return _WORD.findall(normalise(text))


def words_with_lines(lines: list[tuple[int, str]]) -> tuple[list[str], list[int]]:
    """All words of a document and, for each, the source line it sits on."""
    out: list[str] = []
    where: list[int] = []
    for num, line in lines:
        ws = words(line)
        out.extend(ws)
        where.extend([num] * len(ws))
    return out, where


def shingle_hash(ws: list[str]) -> int:
    """32-bit hash of one shingle, stable across runs and platforms (not Python's hash())."""
    return int.from_bytes(hashlib.blake2b(" ".join(ws).encode("utf-8"), digest_size=4).digest(),
                          "big")


def shingles(ws: list[str], k: int = SHINGLE_WORDS) -> Iterator[tuple[int, int]]:
    """``(position, hash)`` of every k-word shingle (one shingle for texts shorter than k)."""
    if 0 < len(ws) < k:
        yield 0, shingle_hash(ws)
        return
    for i in range(len(ws) - k + 1):
        yield i, shingle_hash(ws[i:i + k])


def sampled(h: int) -> bool:
    return h % SAMPLE_MOD == 0
