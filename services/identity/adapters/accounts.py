"""The users table: officials' accounts, the master realm's admin, clients' service accounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t
from services.identity.domain.errors import NotFound
from services.identity.domain.model import Status

Row = Any  # a SQLAlchemy RowMapping

_BY_ID = sa.select(t.users).where(t.users.c.id == sa.bindparam("id"))


def like(text: str) -> str:
    """A LIKE pattern (escape "\\") for text anywhere in the column."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, user_id: str, realm: str | None = None) -> Row | None:
        q = sa.select(t.users).where(t.users.c.id == user_id)
        if realm:
            q = q.where(t.users.c.realm == realm)
        return self.s.execute(q).mappings().first()

    def require(self, user_id: str, realm: str | None = None) -> Row:
        row = self.get(user_id, realm)
        if row is None:
            raise NotFound(f"user {user_id} not found", kind="user", name=user_id)
        return row

    def one(self, user_id: str) -> Row:
        """An account known to exist (named by a session, a code or a client)."""
        return self.s.execute(_BY_ID, {"id": user_id}).mappings().one()

    def for_update(self, user_id: str) -> Row | None:
        """The account, row-locked until the transaction ends (PostgreSQL; SQLite's write
        lock already serializes): changes that count an account's records go one at a time."""
        q = sa.select(t.users).where(t.users.c.id == user_id).with_for_update()
        return self.s.execute(q).mappings().first()

    def find(self, realm: str, username: str) -> Row | None:
        return (
            self.s.execute(
                sa.select(t.users).where(
                    t.users.c.realm == realm, t.users.c.username == username.strip().lower()
                )
            )
            .mappings()
            .first()
        )

    def status(self, user_id: str) -> int | None:
        q = sa.select(t.users.c.status).where(t.users.c.id == user_id)
        return self.s.execute(q).scalar()

    def add(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.users).values(**values))

    def update(self, user_id: str, **values: Any) -> None:
        self.s.execute(sa.update(t.users).where(t.users.c.id == user_id).values(**values))

    def count_failure(self, user_id: str) -> int:
        """One more failed sign-in, counted in the database, not read then written: concurrent
        failures (threads, replicas) each count, so parallel guesses cannot outrun the lock."""
        return int(
            self.s.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(failed_logins=t.users.c.failed_logins + 1)
                .returning(t.users.c.failed_logins)
            ).scalar_one()
        )

    def reserve_attempt(self, user_id: str, max_failures: int, now: float) -> int | None:
        """Take one of an active account's sign-in attempts before its password is checked,
        counted as a failure at once (a right password resets the count, a wrong one keeps
        it): the attempt's number, or None when none is left (locked, disabled, or
        max_failures attempts already counted or in flight). One conditional UPDATE, so
        concurrent attempts (threads, replicas) can never check more passwords than the
        lockout allows. A lock that has run out is lifted here and the count starts again."""
        u = t.users.c
        expired = sa.and_(
            u.status == Status.LOCKED, u.locked_until.is_not(None), u.locked_until <= now
        )
        q = (
            sa.update(t.users)
            .where(
                u.id == user_id,
                sa.or_(sa.and_(u.status == Status.ACTIVE, u.failed_logins < max_failures), expired),
            )
            .values(
                failed_logins=sa.case((expired, 1), else_=u.failed_logins + 1),
                status=sa.case((expired, int(Status.ACTIVE)), else_=u.status),
                locked_until=sa.case((expired, None), else_=u.locked_until),
            )
            .returning(u.failed_logins)
        )
        value = self.s.execute(q).scalar()
        return None if value is None else int(value)

    def release_attempt(self, user_id: str) -> None:
        """Give back an attempt whose password was right but that was refused for another
        reason (a temporary password, a dissolved agency)."""
        u = t.users.c
        self.s.execute(
            sa.update(t.users)
            .where(u.id == user_id, u.status == Status.ACTIVE, u.failed_logins > 0)
            .values(failed_logins=u.failed_logins - 1)
        )

    def lock(self, user_id: str, until: float) -> bool:
        """Lock an active account; False if it was locked (or disabled) already."""
        u = t.users.c
        result: Any = self.s.execute(
            sa.update(t.users)
            .where(u.id == user_id, u.status == Status.ACTIVE)
            .values(status=Status.LOCKED, locked_until=until)
        )
        return bool(result.rowcount)

    def signed_in(self, user_id: str, **values: Any) -> bool:
        """A sign-in goes through only if the account is still active when it commits (a
        lock decided meanwhile wins): resets the failure count. False: refused."""
        u = t.users.c
        result: Any = self.s.execute(
            sa.update(t.users)
            .where(u.id == user_id, u.status == Status.ACTIVE)
            .values(failed_logins=0, **values)
        )
        return bool(result.rowcount)

    def usernames(self, realm: str) -> set[str]:
        q = sa.select(t.users.c.username).where(t.users.c.realm == realm)
        return set(self.s.execute(q).scalars())

    def select(
        self,
        realm: str,
        *,
        agency_codes: Sequence[str] = (),
        role: str | None = None,
        status: int = 0,
        group_id: str = "",
        search: str = "",
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[int, list[Row]]:
        """(how many match, one page of them by username)."""
        q = sa.select(t.users).where(t.users.c.realm == realm)
        if agency_codes:
            q = q.where(t.users.c.agency_code.in_(agency_codes))
        if role is not None:
            q = q.where(
                t.users.c.id.in_(
                    sa.select(t.role_grants.c.user_id).where(t.role_grants.c.role == role)
                )
            )
        if status:
            q = q.where(t.users.c.status == status)
        if group_id:
            q = q.where(
                t.users.c.id.in_(
                    sa.select(t.group_members.c.user_id).where(
                        t.group_members.c.group_id == group_id
                    )
                )
            )
        if search:
            q = q.where(t.users.c.search_text.like(like(search), escape="\\"))
        total = self.s.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
        rows = self.s.execute(q.order_by(t.users.c.username).offset(offset).limit(limit))
        return int(total), list(rows.mappings().all())

    def people(self, realm: str, *, first: int = 0, size: int = 100, **query: Any) -> list[Row]:
        """Accounts of people (not service accounts), Keycloak's user query."""
        q = self._people(sa.select(t.users), realm, **query)
        rows = self.s.execute(q.order_by(t.users.c.username).offset(first).limit(size))
        return list(rows.mappings().all())

    @staticmethod
    def _people(
        q: Any,
        realm: str,
        *,
        username: str = "",
        exact: bool = False,
        email: str = "",
        search: str = "",
        enabled: bool | None = None,
        first_name: str = "",
        last_name: str = "",
        agency_code: str = "",
    ) -> Any:
        q = q.where(t.users.c.realm == realm, t.users.c.service_client_id.is_(None))
        if first_name:
            q = q.where(sa.func.lower(t.users.c.first_name).like(like(first_name), escape="\\"))
        if last_name:
            q = q.where(sa.func.lower(t.users.c.last_name).like(like(last_name), escape="\\"))
        if agency_code:
            q = q.where(t.users.c.agency_code == agency_code)
        if username:
            q = q.where(
                t.users.c.username == username
                if exact
                else t.users.c.username.like(like(username), escape="\\")
            )
        if email:
            q = q.where(t.users.c.email == email)
        if search:
            q = q.where(t.users.c.search_text.like(like(search), escape="\\"))
        if enabled is not None:
            is_enabled = t.users.c.status != Status.DISABLED
            q = q.where(is_enabled if enabled else ~is_enabled)
        return q

    def count_people(self, realm: str, **query: Any) -> int:
        """How many accounts `people` finds with the same filters (Keycloak's users/count)."""
        q = self._people(sa.select(sa.func.count()).select_from(t.users), realm, **query)
        return int(self.s.execute(q).scalar_one())

    def holding(self, realm: str, role: str, first: int, size: int) -> list[Row]:
        """Accounts holding a role in any agency (Keycloak's roles/{name}/users)."""
        q = (
            sa.select(t.users)
            .where(
                t.users.c.realm == realm,
                t.users.c.id.in_(
                    sa.select(t.role_grants.c.user_id).where(t.role_grants.c.role == role)
                ),
            )
            .order_by(t.users.c.username)
            .offset(first)
            .limit(size)
        )
        return list(self.s.execute(q).mappings().all())
