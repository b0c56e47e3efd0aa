"""Sign-in sessions, their refresh tokens, authorization codes and revoked access tokens.
The token path's statements are built once: building a select per request costs more than
executing it on SQLite (parameters are passed apart, the compiled form is cached)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

Row = Any  # a SQLAlchemy RowMapping

_RT_INSERT = sa.insert(t.refresh_tokens)
_SESSION_INSERT = sa.insert(t.sessions)
_RT_WITH_SESSION = (
    sa.select(
        t.refresh_tokens.c.token_hash,
        t.refresh_tokens.c.used_at,
        t.refresh_tokens.c.expires_at,
        t.sessions.c.id.label("sid"),
        t.sessions.c.realm,
        t.sessions.c.user_id,
        t.sessions.c.client_id,
        t.sessions.c.scope,
        t.sessions.c.revoked_at.label("session_revoked_at"),
        t.sessions.c.expires_at.label("session_expires_at"),
        t.sessions.c.auth_time,
        t.sessions.c.acr,
        t.sessions.c.amr,
        t.sessions.c.sso_session_id,
        t.sso_sessions.c.revoked_at.label("sso_revoked_at"),
        t.sso_sessions.c.expires_at.label("sso_expires_at"),
        t.sso_sessions.c.last_seen_at.label("sso_last_seen_at"),
    )
    .join(t.sessions, t.sessions.c.id == t.refresh_tokens.c.session_id)
    .outerjoin(t.sso_sessions, t.sso_sessions.c.id == t.sessions.c.sso_session_id)
    .where(t.refresh_tokens.c.token_hash == sa.bindparam("hash"))
)
_RT_SPEND = (
    sa.update(t.refresh_tokens)
    .where(
        t.refresh_tokens.c.token_hash == sa.bindparam("hash"),
        t.refresh_tokens.c.used_at.is_(None),
    )
    .values(used_at=sa.bindparam("spent_at"))
)


class SessionRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # --- sessions ------------------------------------------------------------------------

    def add(self, **values: Any) -> None:
        self.s.execute(_SESSION_INSERT, values)

    def state(self, sid: str) -> Any:
        """(revoked_at, expires_at) of a session, or None."""
        q = sa.select(t.sessions.c.revoked_at, t.sessions.c.expires_at).where(
            t.sessions.c.id == sid
        )
        return self.s.execute(q).first()

    def revoke(self, sid: str, reason: str, now: float) -> list[Row]:
        """End a session; [(id, realm, user_id, client_id, expires_at)] if it was open (a
        session ends once: a second revoke returns nothing, so nothing is published twice)."""
        return self._end(t.sessions.c.id == sid, reason, now)

    def revoke_open(
        self, now: float, reason: str, *, user_id: str = "", client_id: str = ""
    ) -> list[Row]:
        """End the open sessions of an account (its SSO sessions too) or of a client; the
        client sessions it ended."""
        if user_id:
            self.s.execute(
                sa.update(t.sso_sessions)
                .where(t.sso_sessions.c.user_id == user_id, t.sso_sessions.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=reason)
            )
        column = t.sessions.c.user_id if user_id else t.sessions.c.client_id
        return self._end(column == (user_id or client_id), reason, now)

    def of_user(self, user_id: str, now: float) -> list[Row]:
        """An account's open client sessions, newest first."""
        q = (
            sa.select(t.sessions)
            .where(
                t.sessions.c.user_id == user_id,
                t.sessions.c.revoked_at.is_(None),
                t.sessions.c.expires_at > now,
            )
            .order_by(t.sessions.c.created_at.desc())
        )
        return list(self.s.execute(q).mappings().all())

    def of_client(self, realm: str, client_id: str, now: float) -> list[Row]:
        q = (
            sa.select(t.sessions)
            .where(
                t.sessions.c.realm == realm,
                t.sessions.c.client_id == client_id,
                t.sessions.c.revoked_at.is_(None),
                t.sessions.c.expires_at > now,
            )
            .order_by(t.sessions.c.created_at.desc())
        )
        return list(self.s.execute(q).mappings().all())

    def one(self, sid: str) -> Row | None:
        return (
            self.s.execute(sa.select(t.sessions).where(t.sessions.c.id == sid)).mappings().first()
        )

    # --- SSO sessions (a browser's sign-in) ----------------------------------------------

    def add_sso(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.sso_sessions).values(**values))

    def sso(self, sso_id: str) -> Row | None:
        q = sa.select(t.sso_sessions).where(t.sso_sessions.c.id == sso_id)
        return self.s.execute(q).mappings().first()

    def touch_sso(self, sso_id: str, now: float) -> None:
        self.s.execute(
            sa.update(t.sso_sessions).where(t.sso_sessions.c.id == sso_id).values(last_seen_at=now)
        )

    def reauthenticated(self, sso_id: str, now: float, **auth: Any) -> None:
        self.s.execute(
            sa.update(t.sso_sessions)
            .where(t.sso_sessions.c.id == sso_id)
            .values(last_seen_at=now, **auth)
        )

    def end_sso(self, sso_id: str, reason: str, now: float) -> list[Row]:
        """End an SSO session and every client session started from it; the client sessions
        it ended (each ends once, so nothing is published twice)."""
        self.s.execute(
            sa.update(t.sso_sessions)
            .where(t.sso_sessions.c.id == sso_id, t.sso_sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        return self._end(t.sessions.c.sso_session_id == sso_id, reason, now)

    def _end(self, where: Any, reason: str, now: float) -> list[Row]:
        result = self.s.execute(
            sa.update(t.sessions)
            .where(where, t.sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .returning(
                t.sessions.c.id,
                t.sessions.c.realm,
                t.sessions.c.user_id,
                t.sessions.c.client_id,
                t.sessions.c.expires_at,
            )
        )
        return list(result.mappings().all())

    # --- refresh tokens ------------------------------------------------------------------

    def add_refresh(self, token_hash: str, session_id: str, issued: float, ttl: float) -> None:
        self.s.execute(
            _RT_INSERT,
            {
                "token_hash": token_hash,
                "session_id": session_id,
                "issued_at": issued,
                "expires_at": issued + ttl,
            },
        )

    def refresh_with_session(self, token_hash: str) -> Row | None:
        return self.s.execute(_RT_WITH_SESSION, {"hash": token_hash}).mappings().first()

    def spend_refresh(self, token_hash: str, now: float) -> int:
        """1 if this call spent the token, 0 if it was spent already."""
        result: Any = self.s.execute(_RT_SPEND, {"hash": token_hash, "spent_at": now})
        return int(result.rowcount)

    def refresh_for_introspection(self, token_hash: str) -> Row | None:
        q = (
            sa.select(
                t.refresh_tokens,
                t.sessions.c.revoked_at,
                t.sessions.c.client_id,
                t.sessions.c.user_id,
            )
            .join(t.sessions, t.sessions.c.id == t.refresh_tokens.c.session_id)
            .where(t.refresh_tokens.c.token_hash == token_hash)
        )
        return self.s.execute(q).mappings().first()

    # --- authorization codes -------------------------------------------------------------

    def add_code(self, **values: Any) -> None:
        self.s.execute(sa.insert(t.auth_codes).values(**values))

    def code(self, code_hash: str) -> Row | None:
        q = sa.select(t.auth_codes).where(t.auth_codes.c.code_hash == code_hash)
        return self.s.execute(q).mappings().first()

    def spend_code(self, code_hash: str, now: float) -> None:
        self.s.execute(
            sa.update(t.auth_codes).where(t.auth_codes.c.code_hash == code_hash).values(used_at=now)
        )

    # --- revoked access tokens -----------------------------------------------------------

    def is_revoked(self, jti: Any) -> bool:
        q = sa.select(t.revoked_tokens.c.jti).where(t.revoked_tokens.c.jti == jti)
        return self.s.execute(q).first() is not None

    def revoke_access(self, jti: str, expires_at: float, now: float) -> None:
        """Remember a revoked access token until it expires (and forget expired ones)."""
        self.s.execute(sa.delete(t.revoked_tokens).where(t.revoked_tokens.c.expires_at < now))
        self.s.execute(sa.insert(t.revoked_tokens).values(jti=jti, expires_at=expires_at))
