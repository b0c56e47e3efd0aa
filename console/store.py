"""Spans received over OTLP, kept in one SQLite file with bounded retention.

A `traces` summary row per trace is maintained on insert, so the trace list never has to
group the whole span table.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL,
    service TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id, start_ns);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error INTEGER NOT NULL,
    root_name TEXT,
    root_service TEXT,
    first_name TEXT NOT NULL,
    first_service TEXT NOT NULL,
    services TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_start ON traces (start_ns);
"""


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    service: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error (OTLP)
    status_message: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    start_ns: int
    end_ns: int
    span_count: int
    error: bool
    root_name: str  # the root span's name, or the earliest span's when the root is missing
    service: str
    has_root: bool
    services: list[str]

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)


class SpanStore:
    """Thread-safe (one connection behind a lock); call from a worker thread in async code."""

    def __init__(self, path: Path | str, *, max_spans: int = 200_000, max_age_s: float = 86400):
        self.max_spans = max_spans
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._inserts_since_prune = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, spans: Iterable[SpanRecord]) -> int:
        rows = list(spans)
        if not rows:
            return 0
        summaries: dict[str, dict[str, Any]] = {}
        for s in rows:
            t = summaries.setdefault(
                s.trace_id,
                {
                    "start": s.start_ns,
                    "end": s.end_ns,
                    "n": 0,
                    "error": 0,
                    "root": None,
                    "first": s,
                    "services": set(),
                },
            )
            t["start"] = min(t["start"], s.start_ns)
            t["end"] = max(t["end"], s.end_ns)
            t["n"] += 1
            t["error"] |= int(s.status_code == 2)
            t["services"].add(s.service)
            if not s.parent_span_id:
                t["root"] = s
            if s.start_ns < t["first"].start_ns:
                t["first"] = s
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            s.trace_id,
                            s.span_id,
                            s.parent_span_id,
                            s.name,
                            s.service,
                            s.kind,
                            s.start_ns,
                            s.end_ns,
                            s.status_code,
                            s.status_message,
                            json.dumps(s.attributes, default=str),
                            json.dumps(s.events, default=str),
                        )
                        for s in rows
                    ],
                )
                for trace_id, t in summaries.items():
                    self._upsert_trace(trace_id, t)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._inserts_since_prune += len(rows)
            if self._inserts_since_prune >= 1000 or self._over_limit():
                self._prune()
        return len(rows)

    def _upsert_trace(self, trace_id: str, t: dict[str, Any]) -> None:
        root: SpanRecord | None = t["root"]
        first: SpanRecord = t["first"]
        old = self._db.execute(
            "SELECT services, first_name, first_service, start_ns FROM traces WHERE trace_id=?",
            (trace_id,),
        ).fetchone()
        services = set(t["services"])
        first_name, first_service = first.name, first.service
        if old is not None:
            services |= set(json.loads(old[0]))
            if old[3] <= first.start_ns:
                first_name, first_service = old[1], old[2]
        self._db.execute(
            """
            INSERT INTO traces VALUES (?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT (trace_id) DO UPDATE SET
                start_ns = MIN(start_ns, excluded.start_ns),
                end_ns = MAX(end_ns, excluded.end_ns),
                span_count = span_count + excluded.span_count,
                error = MAX(error, excluded.error),
                root_name = COALESCE(excluded.root_name, root_name),
                root_service = COALESCE(excluded.root_service, root_service),
                first_name = excluded.first_name,
                first_service = excluded.first_service,
                services = excluded.services
            """,
            (
                trace_id,
                t["start"],
                t["end"],
                t["n"],
                t["error"],
                root.name if root else None,
                root.service if root else None,
                first_name,
                first_service,
                json.dumps(sorted(services)),
            ),
        )

    def _over_limit(self) -> bool:
        row = self._db.execute("SELECT MAX(rowid) - MIN(rowid) + 1 FROM spans").fetchone()
        return bool(row[0] and row[0] > self.max_spans)

    def _prune(self) -> None:
        """Drop spans past the count or age limit, then the traces left without spans."""
        self._inserts_since_prune = 0
        cutoff_ns = int((time.time() - self.max_age_s) * 1e9)
        self._db.execute("BEGIN")
        self._db.execute(
            "DELETE FROM spans WHERE rowid <= (SELECT MAX(rowid) FROM spans) - ?",
            (self.max_spans,),
        )
        self._db.execute("DELETE FROM spans WHERE end_ns < ?", (cutoff_ns,))
        self._db.execute("DELETE FROM traces WHERE trace_id NOT IN (SELECT trace_id FROM spans)")
        self._db.execute("COMMIT")

    def prune(self) -> None:
        with self._lock:
            self._prune()

    def count_spans(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def recent_traces(
        self, limit: int = 100, service: str | None = None, errors_only: bool = False
    ) -> list[TraceSummary]:
        where, params = [], []
        if service:
            where.append("services LIKE ?")
            params.append(f'%"{service}"%')
        if errors_only:
            where.append("error = 1")
        sql = "SELECT * FROM traces"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_ns DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*params, limit]).fetchall()
        return [
            TraceSummary(
                trace_id=r[0],
                start_ns=r[1],
                end_ns=r[2],
                span_count=r[3],
                error=bool(r[4]),
                root_name=r[5] if r[5] is not None else r[7],
                service=r[6] if r[6] is not None else r[8],
                has_root=r[5] is not None,
                services=json.loads(r[9]),
            )
            for r in rows
        ]

    def trace(self, trace_id: str) -> list[SpanRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, rowid", (trace_id,)
            ).fetchall()
        return [
            SpanRecord(
                trace_id=r[0],
                span_id=r[1],
                parent_span_id=r[2],
                name=r[3],
                service=r[4],
                kind=r[5],
                start_ns=r[6],
                end_ns=r[7],
                status_code=r[8],
                status_message=r[9],
                attributes=json.loads(r[10]),
                events=json.loads(r[11]),
            )
            for r in rows
        ]
