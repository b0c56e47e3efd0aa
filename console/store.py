"""Spans received over OTLP, kept in one SQLite file with bounded retention.

A `traces` summary row per trace is maintained on insert, so the trace list never has to
group the whole span table. The business keys a span carries (KEY_ATTRIBUTES: document
number and notation, dossier receipt code, agency code…) go to `span_keys`, indexed by value,
so a trace is found by a document number without reading any span's attributes. Searching is
console/search.py; retention (age, then count) is `_prune`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.search import Edge, TraceQuery, matching_trace_ids, service_map

log = logging.getLogger("console.store")

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
CREATE INDEX IF NOT EXISTS spans_parent ON spans (trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_service ON spans (service, start_ns);
CREATE INDEX IF NOT EXISTS spans_name ON spans (name, start_ns);
CREATE INDEX IF NOT EXISTS spans_error ON spans (start_ns) WHERE status_code = 2;
CREATE TABLE IF NOT EXISTS span_keys (
    span_rowid INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    start_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS span_keys_value ON span_keys (value, start_ns);
CREATE INDEX IF NOT EXISTS span_keys_span ON span_keys (span_rowid);
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


# Span attributes that name a business object, searchable by value (lgsp.telemetry sets them).
KEY_ATTRIBUTES = (
    "lgsp.document.id",
    "lgsp.document.number",
    "lgsp.document.notation",
    "lgsp.dossier.id",
    "lgsp.dossier.receipt_code",
    "lgsp.agency.code",
    "lgsp.axis.package_id",
    "lgsp.portal.code",
)
MAX_KEY_CHARS = 200


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
        self._quiet_until = 0.0
        self._services: set[str] | None = None

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
                # One writer behind the lock: the new rows take the rowids after the largest.
                base = self._db.execute("SELECT IFNULL(MAX(rowid), 0) FROM spans").fetchone()[0]
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
                self._db.executemany("INSERT INTO span_keys VALUES (?,?,?,?)", _keys_of(rows, base))
                for trace_id, t in summaries.items():
                    self._upsert_trace(trace_id, t)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if self._services is not None:
                self._services.update(s.service for s in rows)
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
        """Drop spans older than the age limit, then the oldest arrivals past the count limit,
        their keys, and the traces left without spans. Both deletes walk an index (start_ns,
        rowid), so a round costs what it removes, whatever the store's size."""
        self._inserts_since_prune = 0
        cutoff_ns = int((time.time() - self.max_age_s) * 1e9)
        db = self._db
        db.execute("BEGIN")
        try:
            aged = db.execute(
                "SELECT rowid, start_ns FROM spans WHERE start_ns < ? AND end_ns < ?",
                (cutoff_ns, cutoff_ns),
            ).fetchall()
            latest = max((r[1] for r in aged), default=None)
            db.executemany("DELETE FROM spans WHERE rowid = ?", [(r[0],) for r in aged])
            db.executemany("DELETE FROM span_keys WHERE span_rowid = ?", [(r[0],) for r in aged])
            top = db.execute("SELECT MAX(rowid) FROM spans").fetchone()[0] or 0
            upto = top - self.max_spans
            if upto > 0 and db.execute("SELECT 1 FROM spans WHERE rowid <= ?", (upto,)).fetchone():
                self._warn_if_young(upto, cutoff_ns)
                oldest = db.execute(
                    "SELECT MAX(start_ns) FROM spans WHERE rowid <= ?", (upto,)
                ).fetchone()[0]
                latest = oldest if latest is None else max(latest, oldest)
                db.execute("DELETE FROM spans WHERE rowid <= ?", (upto,))
                db.execute("DELETE FROM span_keys WHERE span_rowid <= ?", (upto,))
            if latest is not None:
                db.execute(
                    "DELETE FROM traces WHERE start_ns <= ? AND NOT EXISTS "
                    "(SELECT 1 FROM spans WHERE spans.trace_id = traces.trace_id)",
                    (latest,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _warn_if_young(self, upto: int, cutoff_ns: int) -> None:
        """The count limit is cutting into what the age limit promises: say so, once a round."""
        newest = self._db.execute(
            "SELECT MAX(end_ns) FROM spans WHERE rowid BETWEEN ? AND ?", (upto - 100, upto)
        ).fetchone()
        if newest and newest[0] and newest[0] > cutoff_ns and time.time() > self._quiet_until:
            self._quiet_until = time.time() + 3600  # one line an hour, not one per round
            kept_h = (time.time() - newest[0] / 1e9) / 3600
            log.warning(
                "trace store full: console.retention_spans (%d) keeps only the last %.1f h, "
                "less than console.retention_hours (%.1f h)",
                self.max_spans,
                kept_h,
                self.max_age_s / 3600,
            )

    def prune(self) -> None:
        with self._lock:
            self._prune()

    def services(self) -> list[str]:
        """Services that sent spans (since this store was opened, or still stored then)."""
        with self._lock:
            if self._services is None:
                rows = self._db.execute("SELECT DISTINCT service FROM spans").fetchall()
                self._services = {r[0] for r in rows}
            return sorted(self._services)

    def count_spans(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def recent_traces(
        self, limit: int = 100, service: str | None = None, errors_only: bool = False
    ) -> list[TraceSummary]:
        return self.search(TraceQuery(service=service or "", errors_only=errors_only), limit)

    def search(self, query: TraceQuery, limit: int = 50) -> list[TraceSummary]:
        """Summaries of the traces matching `query`, newest first (console/search.py)."""
        with self._lock:
            ids = matching_trace_ids(self._db, query, limit)
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            rows = self._db.execute(
                f"SELECT * FROM traces WHERE trace_id IN ({marks}) ORDER BY start_ns DESC", ids
            ).fetchall()
        return [_summary(r) for r in rows]

    def service_map(self, since_ns: int) -> tuple[dict[str, int], list[Edge]]:
        with self._lock:
            return service_map(self._db, since_ns)

    def oldest_span_ns(self) -> int | None:
        with self._lock:
            return self._db.execute("SELECT MIN(start_ns) FROM spans").fetchone()[0]

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


def _summary(r: tuple[Any, ...]) -> TraceSummary:
    return TraceSummary(
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


def _keys_of(rows: list[SpanRecord], base: int) -> list[tuple[int, str, str, int]]:
    out = []
    for i, s in enumerate(rows, start=base + 1):
        for key in KEY_ATTRIBUTES:
            value = s.attributes.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                text = str(value)
                if text and len(text) <= MAX_KEY_CHARS:
                    out.append((i, key, text, s.start_ns))
    return out
