"""Storage: engines, migrations, the platform tables and the unit of work.

One way, everywhere: SQLAlchemy's *sync* engine and Session. Database work is short and
blocking, so async code runs it in a worker thread (`await asyncio.to_thread(fn)`); the
relay and the event processor in lgsp.outbox / lgsp.inbox do exactly that. SQLite is the
embedded default (`sqlite:///path/to/service.db`), PostgreSQL is chosen by URL
(`postgresql://…` is read as `postgresql+psycopg://…`).

Each service has its own database, its own Alembic migrations folder and version table. The
platform tables every service needs (outbox, processed_events) are declared once here; a
service's first migration calls `upgrade_platform_tables()` instead of re-declaring them.

The unit of work is where the outbox lives: `uow.emit(event, subject=…)` records an event and
`uow.commit()` writes the service's rows and the outbox rows in one transaction.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from lgsp import events
from lgsp.api.events.v1.envelope_pb2 import Envelope

__all__ = [
    "UnitOfWork",
    "create_engine",
    "downgrade_platform_tables",
    "fault_point",
    "for_writing",
    "migrate",
    "normalize_url",
    "outbox_table",
    "platform_metadata",
    "processed_events_table",
    "run_alembic_env",
    "upgrade_platform_tables",
    "utcnow",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "lgsp_begin_immediate"


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Engines


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; PostgreSQL always goes through psycopg 3."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def create_engine(url: str | URL, **kwargs: Any) -> Engine:
    """A sync engine for a service database.

    SQLite: the parent directory is created; every connection gets WAL, foreign keys and a busy
    timeout. Transactions begin DEFERRED, so readers never wait for a writer (WAL); those on
    `for_writing(engine)` (every UnitOfWork) begin IMMEDIATE, taking the write lock up front:
    a read-then-write transaction would otherwise fail at once with "database is locked" when
    another connection wrote in between, where IMMEDIATE waits for the busy timeout instead.
    """
    u = normalize_url(url)
    if u.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(u, **kwargs)

    if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    # Sessions may be opened in one thread and finished in another (asyncio.to_thread).
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = sa.create_engine(u, connect_args=connect_args, **kwargs)

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (it defers BEGIN and mishandles DDL).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cur.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def for_writing(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions take SQLite's write lock at BEGIN;
    use it for transactions that read and then write. No effect on PostgreSQL."""
    return engine.execution_options(**{_WRITE_OPTION: True})


# ---------------------------------------------------------------------------------------------
# Platform tables

platform_metadata = sa.MetaData()

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite rowid autoincrement

outbox_table = sa.Table(
    "outbox",
    platform_metadata,
    # Publication order: the relay reads unsent rows by id.
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_type", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    # Record headers (event id/type/source/subject and the W3C trace context), str → str.
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    ),
)

processed_events_table = sa.Table(
    "processed_events",
    platform_metadata,
    sa.Column("consumer", sa.String(255), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("event_type", sa.String(255), nullable=False),
    # "handled" (a handler ran) or "ignored" (no handler for the type).
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)


def upgrade_platform_tables() -> None:
    """Create outbox and processed_events; call from a service's first Alembic migration.

    Spelled out with `op` (not metadata.create_all) so this migration stays what it was when
    the tables change later: changes get their own upgrade function.
    """
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )


def downgrade_platform_tables() -> None:
    from alembic import op

    op.drop_table("processed_events")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")


# ---------------------------------------------------------------------------------------------
# Migrations


def run_alembic_env(target_metadata: sa.MetaData | None = None) -> None:
    """The whole body of a service's migrations/env.py.

    Uses the connection handed over by `migrate()`, or opens one from the
    `sqlalchemy.url` option when run by the alembic command line.
    """
    from alembic import context

    config = context.config
    version_table = config.attributes.get("version_table") or config.get_main_option(
        "version_table", "alembic_version"
    )

    def run(conn: sa.Connection) -> None:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=conn.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with for_writing(engine).begin() as conn:
            run(conn)
    finally:
        engine.dispose()


def migrate(
    url_or_engine: str | URL | Engine,
    migrations_dir: str | os.PathLike[str],
    *,
    version_table: str = "alembic_version",
) -> None:
    """Upgrade a service database to its head revision, in one transaction.

    `migrations_dir` holds env.py (calling `run_alembic_env()`), script.py.mako and versions/.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["version_table"] = version_table
    own = not isinstance(url_or_engine, Engine)
    engine = (
        create_engine(url_or_engine, poolclass=sa.pool.NullPool)
        if not isinstance(url_or_engine, Engine)
        else url_or_engine
    )
    try:
        with for_writing(engine).begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        if own:
            engine.dispose()


# ---------------------------------------------------------------------------------------------
# Unit of work


class UnitOfWork:
    """A Session plus the events to publish with it.

    Sync by design; async callers wrap the whole `with` block in `asyncio.to_thread`::

        with UnitOfWork(engine, source="documents") as uow:
            uow.session.add(doc)
            uow.emit(DocumentIssued(...), subject=doc.id)
            uow.commit()

    Leaving the block without commit() rolls back, rows and events alike.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        source: str,
        session_factory: Callable[[], Session] | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self._factory = session_factory or sessionmaker(
            bind=for_writing(engine), expire_on_commit=False
        )
        self._session: Session | None = None
        self._pending: list[tuple[Envelope, str]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its `with` block")
        return self._session

    def __enter__(self) -> Self:
        self._session = self._factory()
        self._pending = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self.session.close()
            self._session = None

    def emit(
        self,
        payload: Message,
        *,
        subject: str,
        topic: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Record an event to be written to the outbox at commit.

        The current trace context is captured now, so the consumer's span joins this trace.
        The topic defaults to the one of the payload's proto package (lgsp.<area>.v1).
        """
        self.session  # noqa: B018 — fail early outside the `with` block
        env = events.make_envelope(
            payload, source=self.source, subject=subject, event_id=event_id, time=time
        )
        self._pending.append((env, topic or events.topic_for_type(env.type)))
        return env

    @property
    def pending_events(self) -> list[Envelope]:
        return [env for env, _ in self._pending]

    def commit(self) -> None:
        """Write the session's changes and the outbox rows in one transaction."""
        session = self.session
        if self._pending:
            now = utcnow()
            session.execute(
                sa.insert(outbox_table),
                [
                    {
                        "event_id": env.id,
                        "event_type": env.type,
                        "topic": topic,
                        "key": env.subject,
                        "value": events.encode(env),
                        "headers": events.envelope_headers(env),
                        "created_at": now,
                    }
                    for env, topic in self._pending
                ],
            )
        fault_point("uow.before_commit")
        session.commit()
        self._pending = []

    def rollback(self) -> None:
        self._pending = []
        if self._session is not None:
            self._session.rollback()


# ---------------------------------------------------------------------------------------------
# Fault injection for crash tests

_fault_lock = threading.Lock()
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """SIGKILL this process at a named step when the LGSP_FAULTS environment variable asks.

    LGSP_FAULTS="relay.after_publish=2,inbox.after_handler" kills on the 2nd pass through
    relay.after_publish, or the 1st through inbox.after_handler. Read on every call (so a
    forked child can set it); unset in production, where the cost is one environ lookup.
    """
    spec = os.environ.get("LGSP_FAULTS")
    if not spec:
        return
    plan = {}
    for item in filter(None, (i.strip() for i in spec.split(","))):
        point, _, n = item.partition("=")
        plan[point] = int(n or 1)
    if name not in plan:
        return
    with _fault_lock:
        _fault_hits[name] = _fault_hits.get(name, 0) + 1
        if _fault_hits[name] >= plan[name]:
            os.kill(os.getpid(), signal.SIGKILL)
