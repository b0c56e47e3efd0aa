"""Migrations and the unit of work, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.engine import Engine

from lgsp import events
from lgsp.api.diagnostics.v1.diagnostics_pb2 import EchoRequest
from lgsp.db import UnitOfWork, create_engine, migrate, outbox_table
from tests.lgsp.storage.support import MIGRATIONS, TOPIC, notes


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    migrate(db_url, MIGRATIONS)
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def test_migrate_creates_platform_and_service_tables(db_url: str) -> None:
    migrate(db_url, MIGRATIONS, version_table="alembic_version_test")
    migrate(db_url, MIGRATIONS, version_table="alembic_version_test")  # at head: no-op
    eng = create_engine(db_url)
    try:
        names = set(sa.inspect(eng).get_table_names())
        assert {"outbox", "processed_events", "notes", "effects"} <= names
        assert "alembic_version_test" in names and "alembic_version" not in names
        with eng.connect() as conn:
            heads = conn.execute(sa.text("SELECT version_num FROM alembic_version_test")).all()
        assert heads == [("0001",)]
        cols = {c["name"] for c in sa.inspect(eng).get_columns("outbox")}
        assert {"id", "event_id", "topic", "key", "value", "headers", "sent_at"} <= cols
    finally:
        eng.dispose()


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    eng = create_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.db'}")
    try:
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert (tmp_path / "deep" / "dir" / "x.db").exists()
    finally:
        eng.dispose()


def test_postgres_url_uses_psycopg() -> None:
    eng = create_engine("postgresql://u@127.0.0.1:1/x")
    assert eng.dialect.driver == "psycopg"


def _rows(engine: Engine) -> tuple[list[tuple[str, str]], list[sa.Row]]:
    with engine.connect() as conn:
        n = [tuple(r) for r in conn.execute(sa.select(notes.c.id, notes.c.text)).all()]
        o = list(conn.execute(sa.select(outbox_table).order_by(outbox_table.c.id)).all())
    return n, o


def test_row_and_event_commit_together(engine: Engine) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        with UnitOfWork(engine, source="test") as uow:
            uow.session.execute(sa.insert(notes).values(id="n1", text="hello"))
            env = uow.emit(EchoRequest(message="hello"), subject="n1", topic=TOPIC)
            # Nothing is visible before commit.
            assert _rows(engine) == ([], [])
            uow.commit()
    trace_id = f"{span.get_span_context().trace_id:032x}"

    n, o = _rows(engine)
    assert n == [("n1", "hello")]
    assert len(o) == 1
    row = o[0]
    assert (row.event_id, row.topic, row.key, row.sent_at) == (env.id, TOPIC, "n1", None)
    stored = events.decode(row.value)
    assert stored.source == "test" and stored.subject == "n1"
    assert events.payload_of(stored) == EchoRequest(message="hello")
    # Trace context captured at emit time, in the envelope and in the record headers.
    assert trace_id in stored.trace_context["traceparent"]
    assert row.headers["traceparent"] == stored.trace_context["traceparent"]
    assert row.headers[events.HEADER_EVENT_ID] == env.id
    assert row.headers[events.HEADER_EVENT_TYPE] == "lgsp.api.diagnostics.v1.EchoRequest"


def test_failed_transaction_leaves_neither_row_nor_event(engine: Engine) -> None:
    with pytest.raises(RuntimeError), UnitOfWork(engine, source="test") as uow:
        uow.session.execute(sa.insert(notes).values(id="n1", text="lost"))
        uow.emit(EchoRequest(message="lost"), subject="n1", topic=TOPIC)
        raise RuntimeError("the service's rule said no")
    assert _rows(engine) == ([], [])

    # Leaving the block without commit() also rolls back.
    with UnitOfWork(engine, source="test") as uow:
        uow.session.execute(sa.insert(notes).values(id="n2", text="forgotten"))
        uow.emit(EchoRequest(message="forgotten"), subject="n2", topic=TOPIC)
    assert _rows(engine) == ([], [])

    # A commit that fails in the database (duplicate key) writes no outbox row either.
    with UnitOfWork(engine, source="test") as uow:
        uow.session.execute(sa.insert(notes).values(id="n3", text="first"))
        uow.commit()
    with pytest.raises(sa.exc.IntegrityError), UnitOfWork(engine, source="test") as uow:
        uow.session.execute(sa.insert(notes).values(id="n4", text="fine"))
        uow.session.execute(sa.insert(notes).values(id="n3", text="duplicate"))
        uow.emit(EchoRequest(message="dup"), subject="n3", topic=TOPIC)
        uow.commit()
    assert _rows(engine) == ([("n3", "first")], [])


def test_emit_defaults_topic_from_proto_package(engine: Engine) -> None:
    with UnitOfWork(engine, source="test") as uow:
        uow.emit(EchoRequest(message="x"), subject="s")
        uow.commit()
    assert [r.topic for r in _rows(engine)[1]] == ["lgsp.diagnostics.v1"]
