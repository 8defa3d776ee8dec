"""A reference library: a folder of fingerprints one candidate is screened against.

::

    LIBRARY/
      library.sqlite          the index (.index): one row per entry, WAL
      objects/ab/<sha>.npy    arrays, content-addressed (.store)
      objects/cd/<sha>.json.z manifests: a fingerprint with array references

How an add stays atomic and safe with several writers: the objects are written first (each
by rename, so they are whole or absent; equal content has one name, so two writers writing
the same object cannot disagree), then one write transaction re-checks that every object is
there -- rewriting any a concurrent ``remove`` took away meanwhile -- and inserts the row and
the reference counts. A killed add leaves at worst unreferenced objects (``verify`` lists
them, the next add of that model reuses them). ``remove`` deletes the row and, in the same
transaction, the objects no entry counts any more.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelprint.fingerprint.model import Fingerprint
from modelprint.library.descriptors import (
    DESCRIPTOR_VERSION,
    Descriptor,
    Library,
    describe,
)
from modelprint.library.index import INDEX_NAME, Entry, Index
from modelprint.library.store import LibraryError, Store, references

#: Where the library verbs look when ``--library`` is not given.
ENV_VAR = "MODELPRINT_LIBRARY"
DEFAULT_DIR = "modelprint-library"


def default_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_name(reference: str) -> str:
    from modelprint.spec.schema import default_name as _name

    return _name(reference)


def tokenizer_digest(fp: Fingerprint) -> str | None:
    """A short digest of the sampled token strings: equal for models sharing a vocabulary."""
    emb = (fp.sketches or {}).get("embedding")
    if not isinstance(emb, dict) or not isinstance(emb.get("tokens"), list):
        return None
    text = "\n".join(str(t) for t in emb["tokens"])
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _findings(fp: Fingerprint) -> list[dict[str, Any]]:
    out = []
    for f in (fp.documents or {}).get("findings") or []:
        if isinstance(f, dict):
            out.append({k: f.get(k) for k in ("kind", "vendor", "license", "file", "line")
                        if f.get(k) is not None})
    return out


@dataclass
class Added:
    """What :meth:`ModelLibrary.add` did."""

    name: str
    digest: str
    new: bool
    stored_bytes: int


@dataclass
class Problem:
    where: str
    cause: str

    def __str__(self) -> str:
        return f"{self.where}: {self.cause}"


@dataclass
class Screen:
    """Every entry's descriptor, stacked, with the entries in the same order."""

    entries: list[Entry]
    library: Library
    stale: list[str] = field(default_factory=list)


class ModelLibrary:
    """An open library folder."""

    def __init__(self, root: str | Path, *, create: bool = False) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(self.root, "not a directory")
        self.index = Index(self.root / INDEX_NAME, create=create)
        self.store = Store(self.root)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> ModelLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def add(self, fp: Fingerprint, *, name: str | None = None, reference: str | None = None,
            replace: bool = False) -> Added:
        """Store ``fp`` as entry ``name`` (default: from its reference)."""
        reference = reference or fp.model.reference
        name = name or default_name(reference)
        digest, arrays = self.store.put_fingerprint(fp)
        desc = describe(fp)
        objects = {digest, *arrays}
        with self.index.write() as db:
            old = self.index.get(name)
            if old is not None and old.digest == digest:
                return Added(name, digest, False, old.stored_bytes)
            if old is not None and not replace:
                raise LibraryError(self.root, f"entry {name!r} already holds another model "
                                   f"({old.reference}); choose another --name or remove it")
            # a concurrent remove may have collected objects we share with it: rewrite them
            if any(not self.store.has(a, ".npy") for a in arrays) or \
                    not self.store.has(digest, ".json.z"):
                self.store.put_fingerprint(fp)
            entry = self._entry(fp, name, reference, digest, desc)
            self.index.insert(db, entry)
            self.index.add_refs(db, objects)
            if old is not None:  # after counting the new entry's objects: shared ones stay
                self._collect(db, old)
        return Added(name, digest, True, entry.stored_bytes)

    def _entry(self, fp: Fingerprint, name: str, reference: str, digest: str,
               desc: Descriptor | None) -> Entry:
        a = fp.architecture
        keys, gram = desc.to_blobs() if desc is not None else (None, None)
        return Entry(
            name=name, digest=digest, reference=reference, revision=fp.model.revision,
            kind=fp.model.kind, family=a.family, num_layers=a.num_layers,
            hidden_size=a.hidden_size, num_heads=a.num_heads, num_kv_heads=a.num_kv_heads,
            intermediate_size=a.intermediate_size, num_experts=a.num_experts,
            vocab_size=a.vocab_size, dtype=a.dtype, tokenizer=tokenizer_digest(fp),
            findings=json.dumps(_findings(fp)), files=json.dumps(dict(fp.model.files)),
            added=now(), stored_bytes=self.store.bytes_of(digest), desc_version=DESCRIPTOR_VERSION,
            desc_n=0 if desc is None else desc.n, desc_keys=keys, desc_gram=gram)

    def remove(self, name: str) -> Entry:
        with self.index.write() as db:
            old = self.index.get(name)
            if old is None:
                raise LibraryError(self.root, f"no entry named {name!r} "
                                              f"({self._hint(name)})")
            db.execute("DELETE FROM entries WHERE name = ?", (name,))
            self._collect(db, old)
        return old

    def _collect(self, db: Any, old: Entry) -> None:
        manifest = self.store.get_manifest(old.digest)
        dead = self.index.drop_refs(db, {old.digest, *references(manifest)})
        for digest in dead:
            for suffix in (".npy", ".json.z"):
                self.store.path(digest, suffix).unlink(missing_ok=True)

    def insert_entry(self, db: Any, entry: Entry) -> None:
        """Index an entry whose objects are already in the store (archive import)."""
        manifest = self.store.get_manifest(entry.digest)
        self.index.insert(db, entry)
        self.index.add_refs(db, {entry.digest, *references(manifest)})

    # -- reading -------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        return self.index.entries(descriptors=False)

    def entry(self, name: str) -> Entry:
        got = self.index.get(name)
        if got is None:
            raise LibraryError(self.root, f"no entry named {name!r} ({self._hint(name)})")
        return got

    def _hint(self, name: str) -> str:
        import difflib

        names = [e.name for e in self.entries()]
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        return f"{len(names)} entries; see `modelprint library list`"

    def fingerprint(self, name: str) -> Fingerprint:
        return self.store.get_fingerprint(self.entry(name).digest)

    def screen(self) -> Screen:
        """Every entry's descriptor for the prefilter (one query, no object read)."""
        entries = self.index.entries(descriptors=True)
        descs: list[Descriptor | None] = []
        stale = []
        for e in entries:
            if e.desc_version != DESCRIPTOR_VERSION:
                stale.append(e.name)
                descs.append(None)
            elif e.desc_keys and e.desc_gram:
                descs.append(Descriptor.from_blobs(e.desc_keys, e.desc_gram, e.desc_n))
            else:
                descs.append(None)
        for e in entries:  # the blobs are not needed beyond this point
            e.desc_keys = e.desc_gram = None
        return Screen(entries, Library.stack(descs), stale)

    # -- checking ------------------------------------------------------------------------
    def verify(self) -> list[Problem]:
        """Every object hash, every reference, the reference counts and stray files."""
        problems: list[Problem] = []
        expected: dict[str, int] = {}
        checked: set[str] = set()
        for e in self.index.entries(descriptors=False):
            path = self.store.path(e.digest, ".json.z")
            try:
                manifest = self.store.get_manifest(e.digest)
            except LibraryError as exc:
                problems.append(Problem(f"entry {e.name}", exc.cause + f" ({path})"))
                continue
            from modelprint.library.store import canonical_json

            if hashlib.sha256(canonical_json(manifest)).hexdigest() != e.digest:
                problems.append(Problem(f"entry {e.name}", f"manifest {path} does not match "
                                                           "its digest"))
            refs = {e.digest, *references(manifest)}
            for o in refs:
                expected[o] = expected.get(o, 0) + 1
            for a in refs - {e.digest}:
                if a in checked:
                    continue
                checked.add(a)
                p = self.store.path(a, ".npy")
                if not p.is_file():
                    problems.append(Problem(f"entry {e.name}", f"array {p} missing"))
                elif hashlib.sha256(p.read_bytes()).hexdigest() != a:
                    problems.append(Problem(f"entry {e.name}", f"array {p} does not match "
                                                               "its digest (corrupt)"))
            if e.desc_version != DESCRIPTOR_VERSION:
                problems.append(Problem(f"entry {e.name}", f"descriptor version "
                                        f"{e.desc_version}, current {DESCRIPTOR_VERSION}: "
                                        "re-add the model"))
        if self.index.ref_counts() != expected:
            problems.append(Problem(str(self.index.path), "reference counts disagree with "
                                                          "the entries"))
        for p in self.store.files():
            digest = p.name.split(".", 1)[0]
            if p.name.endswith(".tmp"):
                problems.append(Problem(str(p), "unfinished write (a killed writer); "
                                                "safe to delete"))
            elif digest not in expected:
                problems.append(Problem(str(p), "object no entry uses (left by a killed add, or "
                                                "an add still running)"))
        return problems
