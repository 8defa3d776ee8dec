"""The zoo's training text: offline, real, split into disjoint parts by a hash of the path.

Sources (present on any machine with this interpreter and Debian docs):
  * the Python standard library's ``.py`` sources (code, comments, docstrings);
  * ``/usr/share/doc/**/*.{txt,md,rst}`` and READMEs (English prose, changelogs).

Splits are disjoint by file, decided by ``sha256(relative path) % 100`` so they do not
depend on directory listing order:
  pretrain  stdlib non-test modules, bucket < 85        (every base model)
  eval      stdlib non-test modules, bucket >= 85       (held-out loss, unigram baseline)
  cpt       stdlib ``test/`` package                    (long continued pre-training)
  sft_a     Debian docs, even bucket                    (fine-tune A, vocabulary extension)
  sft_b     Debian docs, odd bucket                     (fine-tune B)
The corpus fingerprint (hash of every chosen path and content) enters every cache key, so a
machine with different files rebuilds instead of reusing stale models.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("pretrain", "eval", "cpt", "sft_a", "sft_b")
DOC_ROOT = Path("/usr/share/doc")
MAX_FILE_CHARS = 100_000


def _bucket(rel: str) -> int:
    return int(hashlib.sha256(rel.encode()).hexdigest()[:8], 16) % 100


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:4096]:
        return None
    return data.decode("utf-8", errors="replace")[:MAX_FILE_CHARS]


def _candidates() -> dict[str, list[tuple[str, Path]]]:
    """Every file of every split, ordered by hash (a fixed, listing-independent order)."""
    out: dict[str, list[tuple[str, Path]]] = {s: [] for s in SPLITS}
    lib = Path(sysconfig.get_paths()["stdlib"])
    for p in lib.rglob("*.py"):
        rel = p.relative_to(lib).as_posix()
        if rel.startswith(("site-packages/", "lib2to3/tests/", "idlelib/idle_test/")):
            continue
        if rel.startswith("test/"):
            out["cpt"].append(("stdlib/" + rel, p))
        elif _bucket(rel) < 85:
            out["pretrain"].append(("stdlib/" + rel, p))
        else:
            out["eval"].append(("stdlib/" + rel, p))
    if DOC_ROOT.is_dir():
        for p in DOC_ROOT.rglob("*"):
            if not p.is_file() or p.is_symlink():
                continue
            if p.suffix not in (".txt", ".md", ".rst") and not p.name.startswith("README"):
                continue
            if p.name.endswith(".gz"):
                continue
            rel = "doc/" + p.relative_to(DOC_ROOT).as_posix()
            out["sft_a" if _bucket(rel) % 2 == 0 else "sft_b"].append((rel, p))
    for s in out:
        out[s].sort(key=lambda rp: (hashlib.sha256(rp[0].encode()).hexdigest(), rp[0]))
    return out


@dataclass
class Corpus:
    texts: dict[str, list[str]]
    files: dict[str, list[str]]
    fingerprint: str

    def chars(self, split: str) -> int:
        return sum(len(t) for t in self.texts[split])


def load_corpus(max_chars: dict[str, int]) -> Corpus:
    """Read each split up to ``max_chars[split]`` characters (whole files, hash order)."""
    texts: dict[str, list[str]] = {}
    files: dict[str, list[str]] = {}
    h = hashlib.sha256()
    for split, items in _candidates().items():
        texts[split], files[split] = [], []
        total = 0
        for rel, path in items:
            if total >= max_chars[split]:
                break
            t = _read(path)
            if not t or not t.strip():
                continue
            texts[split].append(t)
            files[split].append(rel)
            total += len(t)
            h.update(f"{split}\0{rel}\0".encode())
            h.update(hashlib.sha256(t.encode()).digest())
        if not texts[split]:
            raise RuntimeError(f"corpus split {split!r} is empty on this machine")
    return Corpus(texts, files, h.hexdigest())


def unigram_baseline(train: np.ndarray, held_out: np.ndarray, vocab: int) -> float:
    """Cross-entropy (nats/token) of ``held_out`` under add-one unigram counts of ``train``:
    the loss a model that ignores context would reach; trained models must beat it clearly."""
    counts = np.bincount(train.astype(np.int64), minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[held_out.astype(np.int64)].mean())


class Batches:
    """Random windows of a token stream; the generator seed *is* the data order."""

    def __init__(self, stream: np.ndarray, seq: int, batch: int, seed: int) -> None:
        if len(stream) <= seq + 1:
            raise ValueError(f"token stream of {len(stream)} is shorter than a window")
        self.stream = stream
        self.seq, self.batch = seq, batch
        self.rng = np.random.default_rng(seed)

    def next(self) -> np.ndarray:
        starts = self.rng.integers(0, len(self.stream) - self.seq - 1, size=self.batch)
        return np.stack([self.stream[s:s + self.seq + 1] for s in starts]).astype(np.int64)


def eval_windows(stream: np.ndarray, seq: int, n: int) -> np.ndarray:
    """``n`` evenly spaced windows: a fixed evaluation set (same for every model)."""
    step = max(1, (len(stream) - seq - 1) // n)
    starts = [i * step for i in range(n) if i * step + seq + 1 <= len(stream)]
    return np.stack([stream[s:s + seq + 1] for s in starts]).astype(np.int64)
