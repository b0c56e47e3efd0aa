"""The indexer's memory: each document's last state and its attachments' text (SQLite).

It lives beside the index it feeds (one per index generation), so a rebuilt index comes
with its own state and switching generations switches both. Writes are staged and made
durable by `commit()`, which the indexer calls right after the index commit.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from services.search.index.base import copy_key
from services.search.service_layer.projection import DocState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_state (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attachment_text (
    document_id TEXT NOT NULL, attachment_id TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (document_id, attachment_id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateStore:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(doc_state)")}
        if "copy_key" not in columns:  # a store written before copies were grouped
            self._db.execute("ALTER TABLE doc_state ADD COLUMN copy_key TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS doc_state_copy ON doc_state(copy_key)")
        self._lock = threading.Lock()
        self._in_tx = False

    def _begin(self) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True

    def get(self, doc_id: str) -> DocState | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM doc_state WHERE id=?", (doc_id,)).fetchone()
            if row is None:
                return None
            texts = dict(
                self._db.execute(
                    "SELECT attachment_id, text FROM attachment_text WHERE document_id=?",
                    (doc_id,),
                ).fetchall()
            )
        return DocState.from_json(row[0], texts)

    def docs(self, ids: list[str]) -> dict[str, DocState]:
        """The stored states of `ids` (those known), without their attachments' text."""
        out: dict[str, DocState] = {}
        with self._lock:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                rows = self._db.execute(
                    f"SELECT id, data FROM doc_state WHERE id IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                out.update({r[0]: DocState.from_json(r[1], {}) for r in rows})
        return out

    def copies(self, key: str) -> list[DocState]:
        """The stored states of the copies of one document (base.copy_key), without their
        attachments' text (the caller re-reads a copy it re-indexes)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM doc_state WHERE copy_key=?", (key,)
            ).fetchall()
        return [DocState.from_json(r[0], {}) for r in rows]

    def put(self, state: DocState) -> None:
        with self._lock:
            self._begin()
            self._db.execute(
                "INSERT INTO doc_state(id, data, copy_key) VALUES(?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data=excluded.data, copy_key=excluded.copy_key",
                (state.doc.id, state.to_json(), copy_key(state.doc) or None),
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO attachment_text(document_id, attachment_id, text) "
                "VALUES(?, ?, ?)",
                [(state.doc.id, k, v) for k, v in state.attachments.items()],
            )

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._begin()
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def commit(self) -> None:
        with self._lock:
            if self._in_tx:
                self._db.execute("COMMIT")
                self._in_tx = False

    def close(self) -> None:
        with self._lock:
            if self._in_tx:
                self._db.execute("COMMIT")
                self._in_tx = False
            self._db.close()
