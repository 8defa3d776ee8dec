"""Recognise known license texts by content, from compact shingle signatures.

A signature (built by :mod:`modelprint.license.build_signatures`, shipped as
``data/signatures.json``) holds, per license, the sampled 32-bit hashes of its 5-word shingles
(``hash % 4 == 0``, a few hundred numbers), the hashes of its first 16 shingles (to place the
start of a match exactly) and up to 256 *distinct* hashes: shingles of that
license found in no other known license (they separate Llama 3.1 from 3.2, or the Qwen research
license from the Qwen license). No license text is shipped.

Matching a document: its sampled shingle positions are marked hit/miss for each license, and the
best-scoring contiguous stretch (max-subarray, +1 per hit, -1 per miss) is the region where the
document *is* that license. ``similarity`` is the hit fraction inside that region (1.0 for a
re-wrapped copy), ``coverage`` the fraction of the license's signature found (1.0 for the whole
text, lower for an excerpt). Overlapping matches of several licenses (DeepSeek's license
borrows Apache-2.0 sentences) are resolved in favour of the one with the most distinct hits,
then the most hits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from modelprint.license.text import SAMPLE_MOD, SHINGLE_WORDS, sampled, shingles

FORMAT = "modelprint.license-signatures/1"
#: Fewest sampled hits (about 4x as many shingles, i.e. some 50 consecutive words) before a
#: region is reported: below that, common legal phrases shared by many texts could match.
MIN_HITS = 12
#: Lowest hit fraction inside the best region for it to be reported at all; the check applies
#: its own (higher) threshold.
MIN_SIMILARITY = 0.5
#: Words looked back from a region's first sampled hit for known shingles (its true start).
LOOKBACK = 4 * SAMPLE_MOD


@dataclass(frozen=True)
class Signature:
    id: str
    title: str
    family: str
    vendor: str | None
    sampled: frozenset[int]
    distinct: frozenset[int]
    head: frozenset[int]
    n_shingles: int

    def knows(self, h: int) -> bool:
        return h in self.sampled or h in self.distinct or h in self.head


@dataclass
class Match:
    """One license recognised in one document."""

    signature: Signature
    start: int            # word index of the region
    stop: int             # word index one past the region
    hits: int             # sampled shingles of the region found in the signature
    sampled_in_region: int
    distinct_hits: int
    alternatives: list[str]

    @property
    def similarity(self) -> float:
        return self.hits / max(1, self.sampled_in_region)

    @property
    def coverage(self) -> float:
        return min(1.0, self.hits / max(1, len(self.signature.sampled)))


@cache
def load_signatures() -> tuple[Signature, ...]:
    """The shipped signatures (read once)."""
    raw = resources.files("modelprint.license").joinpath("data/signatures.json").read_text(
        encoding="utf-8")
    return parse_signatures(json.loads(raw))


def parse_signatures(data: dict[str, Any]) -> tuple[Signature, ...]:
    if data.get("format") != FORMAT or data.get("shingle_words") != SHINGLE_WORDS \
            or data.get("sample_mod") != SAMPLE_MOD:
        raise RuntimeError("license signatures were built with other settings; rebuild them "
                           "with `python -m modelprint.license.build_signatures`")
    return tuple(
        Signature(id=e["id"], title=e["title"], family=e["family"], vendor=e.get("vendor"),
                  sampled=frozenset(e["sampled"]), distinct=frozenset(e["distinct"]),
                  head=frozenset(e.get("head", ())), n_shingles=int(e["n_shingles"]))
        for e in data["licenses"]
    )


def signatures_digest() -> str:
    """Short id of the shipped signature set, recorded with every scan."""
    import hashlib

    raw = resources.files("modelprint.license").joinpath("data/signatures.json").read_bytes()
    return hashlib.sha256(raw).hexdigest()[:16]


def _best_region(flags: list[bool]) -> tuple[int, int, int]:
    """Max-subarray over +1 (hit) / -1 (miss): (first, last+1, hits) of the best stretch."""
    best = (0, 0, 0)
    best_score = 0
    score = 0
    start = 0
    hits = 0
    for i, hit in enumerate(flags):
        if score <= 0:
            score, start, hits = 0, i, 0
        score += 1 if hit else -1
        hits += hit
        if score > best_score:
            best_score, best = score, (start, i + 1, hits)
    return best


def find_licenses(ws: list[str], sigs: tuple[Signature, ...] | None = None) -> list[Match]:
    """Known licenses present in the word list ``ws`` (one document), best first."""
    sigs = load_signatures() if sigs is None else sigs
    if len(ws) < SHINGLE_WORDS:
        return []
    all_sh = list(shingles(ws))
    samp = [(pos, h) for pos, h in all_sh if sampled(h)]
    if len(samp) < MIN_HITS:
        return []
    found: list[Match] = []
    for sig in sigs:
        flags = [h in sig.sampled for _, h in samp]
        if sum(flags) < MIN_HITS:
            continue
        a, b, hits = _best_region(flags)
        if hits < MIN_HITS or hits / (b - a) < MIN_SIMILARITY:
            continue
        start, stop = samp[a][0], samp[b - 1][0] + SHINGLE_WORDS
        start = _extend_back(all_sh, start, sig)
        distinct = sum(1 for pos, h in all_sh if start <= pos < stop and h in sig.distinct)
        found.append(Match(sig, start, stop, hits, b - a, distinct, []))
    return _resolve(found)


def _extend_back(all_sh: list[tuple[int, int]], start: int, sig: Signature) -> int:
    """Move a region's start back over unsampled shingles the signature knows (its opening
    shingles are kept whole as ``head``), so a finding's line is where the license begins
    rather than at its first sampled shingle."""
    for pos in range(start - 1, max(-1, start - LOOKBACK - 1), -1):
        if sig.knows(all_sh[pos][1]):
            start = pos
    return start


def _overlap(x: Match, y: Match) -> float:
    inter = min(x.stop, y.stop) - max(x.start, y.start)
    return max(0, inter) / max(1, min(x.stop - x.start, y.stop - y.start))


def _resolve(found: list[Match]) -> list[Match]:
    """Keep one license per region: most distinct hits, then most hits. A rival of the same
    family with as many hits and no fewer distinct hits is kept as an *alternative* (an excerpt
    that never names its version fits Llama 3.1 and 3.2 alike)."""
    found.sort(key=lambda m: (m.distinct_hits, m.hits, m.similarity), reverse=True)
    kept: list[Match] = []
    for m in found:
        rival = next((k for k in kept if _overlap(k, m) > 0.5), None)
        if rival is None:
            kept.append(m)
        elif (m.signature.family == rival.signature.family
              and m.distinct_hits == rival.distinct_hits and m.hits >= 0.95 * rival.hits):
            rival.alternatives.append(m.signature.title)
    kept.sort(key=lambda m: m.start)
    return kept
