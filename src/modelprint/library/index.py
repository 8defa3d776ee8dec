"""The library's index: one embedded SQLite database (``library.sqlite``, WAL).

One row per entry: its name, the digest of its stored fingerprint (:mod:`.store`), the
reference it was made from with the resolved revision, family and shapes, the tokenizer
(a digest of the sampled token strings), license/vendor findings, the weight file hashes,
when it was added, its stored bytes and its screening descriptor. Failed builds are kept in
their own table with the one-line error, so a re-run knows what to retry.

Writers take SQLite's write lock (``BEGIN IMMEDIATE``) for each change and wait for one
another (``busy_timeout``); WAL lets readers (``identify``) go on meanwhile. A change is one
transaction, so a killed writer leaves the index as it was before that change.

Schema versions live in ``meta.schema``; :data:`MIGRATIONS` upgrades older files in place,
and a file from a newer modelprint is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelprint.library.store import LibraryError

INDEX_NAME = "library.sqlite"
SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    reference TEXT NOT NULL,
    revision TEXT,
    kind TEXT,
    family TEXT,
    num_layers INTEGER,
    hidden_size INTEGER,
    num_heads INTEGER,
    num_kv_heads INTEGER,
    intermediate_size INTEGER,
    num_experts INTEGER,
    vocab_size INTEGER,
    dtype TEXT,
    tokenizer TEXT,
    findings TEXT NOT NULL DEFAULT '[]',
    files TEXT NOT NULL DEFAULT '{}',
    added TEXT NOT NULL,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    desc_version INTEGER NOT NULL DEFAULT 0,
    desc_n INTEGER NOT NULL DEFAULT 0,
    desc_keys BLOB,
    desc_gram BLOB
);
CREATE INDEX entries_digest ON entries(digest);
CREATE INDEX entries_reference ON entries(reference);
CREATE TABLE refs (
    object BLOB PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE failures (
    reference TEXT PRIMARY KEY,
    name TEXT,
    error TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

#: schema version -> SQL that upgrades from the previous version.
MIGRATIONS: dict[int, str] = {1: _V1}

#: The columns of ``entries`` in order (what :class:`Entry` carries).
COLUMNS = ("name", "digest", "reference", "revision", "kind", "family", "num_layers",
           "hidden_size", "num_heads", "num_kv_heads", "intermediate_size", "num_experts",
           "vocab_size", "dtype", "tokenizer", "findings", "files", "added", "stored_bytes",
           "desc_version", "desc_n", "desc_keys", "desc_gram")


@dataclass
class Entry:
    """One library entry as the index holds it."""

    name: str
    digest: str
    reference: str
    revision: str | None
    kind: str | None
    family: str | None
    num_layers: int | None
    hidden_size: int | None
    num_heads: int | None
    num_kv_heads: int | None
    intermediate_size: int | None
    num_experts: int | None
    vocab_size: int | None
    dtype: str | None
    tokenizer: str | None
    findings: str
    files: str
    added: str
    stored_bytes: int
    desc_version: int
    desc_n: int
    desc_keys: bytes | None
    desc_gram: bytes | None

    def row(self) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)

    def to_json(self, *, descriptors: bool = False) -> dict[str, Any]:
        out = {c: getattr(self, c) for c in COLUMNS if not c.startswith("desc_")}
        out["findings"] = json.loads(self.findings or "[]")
        out["files"] = json.loads(self.files or "{}")
        out["descriptor"] = {"version": self.desc_version, "tokens": self.desc_n}
        if descriptors:
            out["descriptor"].update(
                keys=(self.desc_keys or b"").hex(), gram=(self.desc_gram or b"").hex())
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """The inverse of ``to_json(descriptors=True)`` (archives); raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("an entry is a JSON object")
        desc = data.get("descriptor") or {}
        fields: dict[str, Any] = {c: data.get(c) for c in COLUMNS if not c.startswith("desc_")}
        fields["findings"] = json.dumps(fields.get("findings") or [])
        fields["files"] = json.dumps(fields.get("files") or {})
        for key in ("name", "digest", "reference", "added"):
            if not isinstance(fields.get(key), str):
                raise ValueError(f"entry field {key!r} must be text")
        fields["stored_bytes"] = int(fields.get("stored_bytes") or 0)
        return cls(**fields, desc_version=int(desc.get("version") or 0),
                   desc_n=int(desc.get("tokens") or 0),
                   desc_keys=bytes.fromhex(desc.get("keys") or ""),
                   desc_gram=bytes.fromhex(desc.get("gram") or ""))


class Index:
    """An open ``library.sqlite``."""

    def __init__(self, path: Path, *, create: bool = False, timeout: float = 60.0) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LibraryError(self.path.parent, "not a modelprint library (no "
                               f"{INDEX_NAME}; create one with `modelprint library add`)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(self.path, f"not a readable library index ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------
    def _version(self) -> int:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise LibraryError(self.path, "an SQLite file, but not a modelprint library "
                                              "index (no meta table)")
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        try:
            return int(row[0]) if row else 0
        except ValueError:
            raise LibraryError(self.path, f"schema version {row[0]!r} is not a number") from None

    def _migrate(self) -> None:
        with self.write():
            version = self._version()
            if version > SCHEMA_VERSION:
                raise LibraryError(self.path, f"index schema {version} was written by a newer "
                                   f"modelprint (this one reads up to {SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(v),))

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under SQLite's write lock (waits for other writers)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- entries -------------------------------------------------------------------------
    def entries(self, *, descriptors: bool = True) -> list[Entry]:
        skip = () if descriptors else ("desc_keys", "desc_gram")
        cols = ", ".join("NULL" if c in skip else c for c in COLUMNS)
        try:
            rows = self.db.execute(f"SELECT {cols} FROM entries ORDER BY name").fetchall()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(self.path, f"corrupt library index ({exc})") from None
        return [Entry(*r) for r in rows]

    def get(self, name: str) -> Entry | None:
        try:
            row = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM entries WHERE name = ?",
                                  (name,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(self.path, f"corrupt library index ({exc})") from None
        return Entry(*row) if row else None

    def names_for_reference(self, reference: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT name FROM entries WHERE reference = ?", (reference,))]

    def insert(self, db: sqlite3.Connection, entry: Entry) -> None:
        marks = ", ".join("?" for _ in COLUMNS)
        db.execute(f"INSERT OR REPLACE INTO entries ({', '.join(COLUMNS)}) VALUES ({marks})",
                   entry.row())
        db.execute("DELETE FROM failures WHERE reference = ?", (entry.reference,))

    def add_refs(self, db: sqlite3.Connection, objects: set[str]) -> None:
        """Count one more entry using each object (a manifest or an array)."""
        db.executemany("INSERT INTO refs VALUES (?, 1) ON CONFLICT(object) DO UPDATE SET "
                       "count = count + 1", [(bytes.fromhex(o),) for o in objects])

    def drop_refs(self, db: sqlite3.Connection, objects: set[str]) -> set[str]:
        """Count one entry fewer for each object; returns those no entry uses any more."""
        db.executemany("UPDATE refs SET count = count - 1 WHERE object = ?",
                       [(bytes.fromhex(o),) for o in objects])
        dead = {bytes(r[0]).hex() for r in db.execute("SELECT object FROM refs WHERE count <= 0")}
        db.execute("DELETE FROM refs WHERE count <= 0")
        return dead

    def ref_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT object, count FROM refs")
        return {bytes(o).hex(): int(c) for o, c in rows}

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])

    # -- failures ------------------------------------------------------------------------
    def record_failure(self, reference: str, name: str | None, error: str, at: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)",
                       (reference, name, " ".join(error.split()), at))

    def failures(self) -> list[tuple[str, str | None, str, str]]:
        return list(self.db.execute("SELECT reference, name, error, at FROM failures "
                                    "ORDER BY reference"))
