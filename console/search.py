"""Finding traces in the span store: by service, operation, status, duration, time range, trace
id or business key, and the service map drawn from parent/child spans across services.

Every query is ordered by start time, newest first, over an index of the store
(console/store.py SCHEMA), and read lazily: the scan stops once `limit` distinct traces are
found or SCAN_LIMIT spans have been looked at, so a search costs what it returns, not the
store's size.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCAN_LIMIT = 200_000  # spans looked at, at most, for one search


@dataclass(frozen=True)
class TraceQuery:
    service: str = ""
    operation: str = ""  # a span name, exactly
    errors_only: bool = False
    min_duration_ns: int = 0  # of a matching span (of the whole trace without span filters)
    start_ns: int | None = None  # spans that started in [start_ns, end_ns]
    end_ns: int | None = None
    trace_id: str = ""
    key: str = ""  # a business key's value: document number or notation, receipt code…

    @property
    def by_span(self) -> bool:
        return bool(self.service or self.operation or self.errors_only or self.key)


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    calls: int
    errors: int


def matching_trace_ids(db: sqlite3.Connection, q: TraceQuery, limit: int) -> list[str]:
    """Trace ids matching `q`, newest first."""
    if q.trace_id:
        row = db.execute("SELECT trace_id FROM traces WHERE trace_id = ?", (q.trace_id,))
        return [r[0] for r in row]
    if not q.by_span:
        return _from_traces(db, q, limit)
    where: list[str] = []
    params: list[object] = []
    if q.key:
        source = "span_keys k JOIN spans s ON s.rowid = k.span_rowid"
        where.append("k.value = ?")
        params.append(q.key)
        order = "k.start_ns"
        time_col = "k.start_ns"
    else:
        source, order, time_col = "spans s", "s.start_ns", "s.start_ns"
    if q.service:
        where.append("s.service = ?")
        params.append(q.service)
    if q.operation:
        where.append("s.name = ?")
        params.append(q.operation)
    if q.errors_only:
        where.append("s.status_code = 2")
    if q.min_duration_ns:
        where.append("s.end_ns - s.start_ns >= ?")
        params.append(q.min_duration_ns)
    if q.start_ns is not None:
        where.append(f"{time_col} >= ?")
        params.append(q.start_ns)
    if q.end_ns is not None:
        where.append(f"{time_col} <= ?")
        params.append(q.end_ns)
    sql = f"SELECT s.trace_id FROM {source} WHERE {' AND '.join(where)} ORDER BY {order} DESC"
    found: dict[str, None] = {}
    cursor = db.execute(sql, params)
    scanned = 0
    while len(found) < limit and scanned < SCAN_LIMIT:
        rows = cursor.fetchmany(512)
        if not rows:
            break
        scanned += len(rows)
        for (trace_id,) in rows:
            found[trace_id] = None
            if len(found) >= limit:
                break
    cursor.close()
    return list(found)


def _from_traces(db: sqlite3.Connection, q: TraceQuery, limit: int) -> list[str]:
    where, params = ["1"], []
    if q.min_duration_ns:
        where.append("end_ns - start_ns >= ?")
        params.append(q.min_duration_ns)
    if q.start_ns is not None:
        where.append("start_ns >= ?")
        params.append(q.start_ns)
    if q.end_ns is not None:
        where.append("start_ns <= ?")
        params.append(q.end_ns)
    sql = f"SELECT trace_id FROM traces WHERE {' AND '.join(where)} ORDER BY start_ns DESC LIMIT ?"
    return [r[0] for r in db.execute(sql, [*params, limit])]


def service_map(db: sqlite3.Connection, since_ns: int) -> tuple[dict[str, int], list[Edge]]:
    """(spans per service, caller → callee edges) over spans that started since `since_ns`:
    an edge is a span whose parent span belongs to another service. The plan is pinned (the
    window by start time, each parent by its id): left to itself SQLite walks the service
    index over the whole store."""
    nodes = {
        r[0]: r[1]
        for r in db.execute(
            "SELECT service, COUNT(*) FROM spans INDEXED BY spans_start WHERE start_ns >= ? "
            "GROUP BY service",
            (since_ns,),
        )
    }
    edges = [
        Edge(r[0], r[1], r[2], r[3])
        for r in db.execute(
            """
            SELECT p.service, c.service, COUNT(*), SUM(c.status_code = 2)
            FROM spans c INDEXED BY spans_start
            CROSS JOIN spans p INDEXED BY spans_parent
                ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
            WHERE c.start_ns >= ? AND c.parent_span_id != '' AND p.service != c.service
            GROUP BY p.service, c.service ORDER BY p.service, c.service
            """,
            (since_ns,),
        )
    ]
    return nodes, edges
