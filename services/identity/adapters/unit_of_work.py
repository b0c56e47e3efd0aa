"""The identity database behind the use cases: repositories over one session, the unit of
work (lgsp.db.UnitOfWork: rows and their events commit together through the outbox), and
`Storage`, which makes units of work and read sessions for one engine."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from lgsp.db import UnitOfWork, for_writing
from services.identity.adapters.accounts import AccountRepository
from services.identity.adapters.agencies import AgencyRepository
from services.identity.adapters.app_passwords import AppPasswordRepository
from services.identity.adapters.audit import AuditLog, RequestLog
from services.identity.adapters.client_roles import ClientRoleRepository
from services.identity.adapters.clients import ClientRepository
from services.identity.adapters.groups import GroupRepository
from services.identity.adapters.keys import KeyRepository
from services.identity.adapters.realm_settings import RealmSettingsRepository
from services.identity.adapters.roles import GrantRepository, RealmRoleRepository
from services.identity.adapters.sessions import SessionRepository
from services.identity.domain.errors import AlreadyExists, Stale

SOURCE = "identity"


class Repositories:
    """Every identity repository over one SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.agencies = AgencyRepository(session)
        self.accounts = AccountRepository(session)
        self.app_passwords = AppPasswordRepository(session)
        self.grants = GrantRepository(session)
        self.realm_roles = RealmRoleRepository(session)
        self.groups = GroupRepository(session)
        self.clients = ClientRepository(session)
        self.client_roles = ClientRoleRepository(session)
        self.sessions = SessionRepository(session)
        self.keys = KeyRepository(session)
        self.realm_settings = RealmSettingsRepository(session)
        self.audit = AuditLog(session)
        self.requests = RequestLog(session)


class IdentityUnitOfWork(UnitOfWork):
    """lgsp's unit of work with the identity repositories on its session (`uow.repos`).

    With `races=True` (directory changes) the losing side of a race gets the answer the
    checks give in turn: a unique key taken meanwhile → AlreadyExists, a row changed
    meanwhile → Stale. (The checks before each insert and update see committed data only; on
    PostgreSQL a concurrent request can commit between the check and the write.)"""

    def __init__(
        self, engine: Engine, session_factory: Callable[[], Session], races: bool = False
    ) -> None:
        super().__init__(engine, source=SOURCE, session_factory=session_factory)
        self.races = races
        self._repos: Repositories | None = None
        # Client sessions an account change ended (disable, delete, lock, password reset):
        # their back-channel logout tokens go out once this commits.
        self.ended_sessions: list[Any] = []

    def __enter__(self) -> Self:
        super().__enter__()
        self._repos = Repositories(self.session)
        return self

    @property
    def repos(self) -> Repositories:
        assert self._repos is not None, "IdentityUnitOfWork used outside its `with` block"
        return self._repos

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._repos = None
        super().__exit__(exc_type, exc, tb)
        if not self.races:
            return
        if isinstance(exc, sa.exc.IntegrityError) and _sqlstate(exc) in {"23505", None}:
            if _sqlstate(exc) == "23505" or "UNIQUE" in str(exc.orig):
                raise AlreadyExists("it was created by a concurrent request") from None
        if isinstance(exc, sa.exc.OperationalError) and _sqlstate(exc) in {"40001", "40P01"}:
            raise Stale("changed by a concurrent request; read it again and retry") from None


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


class Storage:
    """Units of work and reads over the identity database, and the directory's generation.

    One sessionmaker for every unit of work: UnitOfWork would otherwise build a new one (a new
    Session subclass with its event dispatch) per call, ~0.1 ms each on the token path.
    Directory changes on PostgreSQL run at REPEATABLE READ: two admins changing one row at
    once (both past the etag check) make the second fail (→ Stale) instead of silently
    overwriting the first. SQLite takes its write lock at BEGIN, which serializes them.
    Token writes on SQLite queue on a lock in this process: waiting for the one writer in
    SQLite's busy handler sleeps in steps of milliseconds and wakes late (PostgreSQL: no lock).
    """

    def __init__(self, engine: Engine, after_commit: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.after_commit = after_commit
        # Told of the client sessions a committed account change ended (the SSO service sends
        # their back-channel logout tokens; wired in bootstrap).
        self.on_sessions_ended: Callable[[list[Any]], None] = lambda rows: None
        # Bumped by every committed directory change: the token service's caches compare it,
        # so a change made here takes effect on the very next token request.
        self.generation = 0
        writer = for_writing(engine)
        self.sessions = sessionmaker(bind=writer, expire_on_commit=False)
        if engine.dialect.name == "postgresql":
            writer = writer.execution_options(isolation_level="REPEATABLE READ")
        self.directory_sessions = sessionmaker(bind=writer, expire_on_commit=False)
        self._writer: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def change(self) -> IdentityUnitOfWork:
        """A unit of work for a directory change (commit it with `committed`)."""
        return IdentityUnitOfWork(self.engine, self.directory_sessions, races=True)

    def committed(self, uow: UnitOfWork) -> None:
        """Commit a directory change: caches drop what they hold, the relay wakes."""
        uow.commit()
        self.generation += 1
        self.after_commit()
        self.announce_ended(uow)

    def announce_ended(self, uow: UnitOfWork) -> None:
        """After a commit: the client sessions it ended, to the back-channel logout."""
        rows = getattr(uow, "ended_sessions", None)
        if rows:
            self.on_sessions_ended(list(rows))

    def key_change(self) -> IdentityUnitOfWork:
        """A unit of work for the signing keys (outside the token path's queue: keys are
        loaded from inside token transactions)."""
        return IdentityUnitOfWork(self.engine, self.sessions)

    @contextmanager
    def token_change(self) -> Iterator[IdentityUnitOfWork]:
        """A unit of work on the token path (sign-ins, sessions, keys)."""
        with self._writer:
            with IdentityUnitOfWork(self.engine, self.sessions) as uow:
                yield uow

    @contextmanager
    def read(self) -> Iterator[Repositories]:
        with Session(self.engine) as s:
            yield Repositories(s)

    def ping(self) -> None:
        with Session(self.engine) as s:
            s.execute(sa.text("SELECT 1"))

    def session(self) -> Session:
        """A plain read session (tests and tools)."""
        return Session(self.engine)
