"""Byte-level BPE (GPT-2 style), trained here so the zoo needs no downloads.

One tokenizer is shared by every zoo model, as sibling checkpoints share one in practice; the
vocabulary-extension derivative continues the merge list (old ids unchanged, new ids appended).
The same encoder applies SmolLM2's own merges (read from its GGUF) for the real fine-tune.
Files are written in the Hugging Face ``tokenizer.json`` layout (``model.vocab`` maps token
strings to ids) because that is what modelprint reads for vocabulary checks.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

#: GPT-2's pre-tokenizer, with Python ``re`` classes in place of ``\p{L}`` / ``\p{N}``.
PRETOKEN = re.compile(
    r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")
EOT = "<|endoftext|>"


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (so tokens are JSON-safe text)."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def _word_symbols(word: str) -> tuple[str, ...]:
    m = byte_to_unicode()
    return tuple(m[b] for b in word.encode("utf-8"))


def train_merges(texts: Iterable[str], n_merges: int,
                 start: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Learn ``n_merges`` merges (after applying ``start``), most frequent pair first.

    Ties break on the pair itself, so the result is a pure function of the text.
    """
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(PRETOKEN.findall(t))
    words: list[list[str]] = []
    freq: list[int] = []
    enc = Encoder(start or [])
    for w, c in sorted(counts.items()):
        words.append(list(enc.symbols(w)))
        freq.append(c)
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for p in pairwise(word):
            pairs[p] += freq[i]
            where[p].add(i)
    merges: list[tuple[str, str]] = []
    for _ in range(n_merges):
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        a, b = best
        for i in sorted(where.pop(best, ())):
            w2 = words[i]
            for p in pairwise(w2):
                pairs[p] -= freq[i]
                if pairs[p] <= 0:
                    del pairs[p]
            out: list[str] = []
            j = 0
            while j < len(w2):
                if j + 1 < len(w2) and w2[j] == a and w2[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(w2[j])
                    j += 1
            words[i] = out
            for p in pairwise(out):
                pairs[p] += freq[i]
                where[p].add(i)
    return merges


class Encoder:
    """Apply merges by rank; ids: 256 byte symbols, then one per merge, then ``<|endoftext|>``."""

    def __init__(self, merges: list[tuple[str, str]], vocab: dict[str, int] | None = None,
                 eot: str = EOT) -> None:
        self.merges = list(merges)
        self.rank = {p: i for i, p in enumerate(self.merges)}
        if vocab is None:
            base = [byte_to_unicode()[b] for b in range(256)]
            vocab = {s: i for i, s in enumerate(base)}
            for a, b in self.merges:
                vocab.setdefault(a + b, len(vocab))
            vocab.setdefault(EOT, len(vocab))
        self.vocab: dict[str, int] = vocab
        self.eot_token = eot
        self.eot = self.vocab[eot]
        self._cache: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def symbols(self, word: str) -> tuple[str, ...]:
        return self.apply(list(_word_symbols(word)))

    def apply(self, w: list[str]) -> tuple[str, ...]:
        """Merge a list of byte symbols by rank (lowest rank first)."""
        while len(w) > 1:
            best = None
            for j in range(len(w) - 1):
                r = self.rank.get((w[j], w[j + 1]))
                if r is not None and (best is None or r < best):
                    best = r
            if best is None:
                break
            a, b = self.merges[best]
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            w = out
        return tuple(w)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in PRETOKEN.findall(text):
            got = self._cache.get(word)
            if got is None:
                got = [self.vocab[s] for s in self.symbols(word)]
                if len(self._cache) < 500_000:
                    self._cache[word] = got
            ids.extend(got)
        return ids

    def decode(self, ids: list[int]) -> str:
        inv = {v: k for k, v in self.vocab.items()}
        back = {c: b for b, c in byte_to_unicode().items()}
        data = bytearray()
        for i in ids:
            s = inv[i]
            if s == self.eot_token:
                data.extend(s.encode())
            else:
                data.extend(back[c] for c in s)
        return data.decode("utf-8", errors="replace")

    def tokenizer_json(self) -> dict[str, Any]:
        """The HF ``tokenizers`` serialisation of this byte-level BPE."""
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [{"id": self.eot, "content": self.eot_token, "single_word": False,
                              "lstrip": False, "rstrip": False, "normalized": False,
                              "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False,
                              "trim_offsets": True, "use_regex": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                        "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [[a, b] for a, b in self.merges]},
        }

    def save(self, directory: Path) -> None:
        """``tokenizer.json`` + ``tokenizer_config.json`` as a HF repository carries them."""
        (directory / "tokenizer.json").write_text(
            json.dumps(self.tokenizer_json(), ensure_ascii=False) + "\n", encoding="utf-8")
        (directory / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOT,
            "eos_token": EOT, "unk_token": EOT, "model_max_length": 2048}, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Encoder:
        data = json.loads(path.read_text(encoding="utf-8"))
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))
                  for m in data["model"]["merges"]]
        vocab = dict(data["model"]["vocab"])
        for tok in data.get("added_tokens", []):
            vocab.setdefault(tok["content"], tok["id"])
        return cls([(a, b) for a, b in merges], vocab)
