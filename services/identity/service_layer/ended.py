"""Ending tokens everywhere: the events on lgsp.identity.sessions.v1 that make every service
refuse an ended session's tokens within a second (lgsp.authn.sessions follows the topic).

Written through the unit of work of the change that ends them, so the session's end and its
event commit together (outbox). Only realm lgsp is published: master-realm tokens are for
identity's own admin API, which checks its database on every call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lgsp.api.identity.v1 import sessions_pb2 as spb
from lgsp.authn.sessions import SESSIONS_TOPIC
from lgsp.db import UnitOfWork
from services.identity.domain import sessions as rules
from services.identity.domain.access import REALM

Row = Any  # a stored record (SQLAlchemy RowMapping)

LOGOUT = spb.SESSION_END_REASON_LOGOUT
REVOKED = spb.SESSION_END_REASON_REVOKED
REFRESH_TOKEN_REUSED = spb.SESSION_END_REASON_REFRESH_TOKEN_REUSED
ACCOUNT_CHANGED = spb.SESSION_END_REASON_ACCOUNT_CHANGED
ADMIN = spb.SESSION_END_REASON_ADMIN


def sessions_ended(
    uow: UnitOfWork, ended: Iterable[Row], reason: spb.SessionEndReason.ValueType, now: float
) -> None:
    """SessionEnded for each session a repository call just ended (SessionRepository.revoke,
    revoke_open return them)."""
    for s in ended:
        if s["realm"] != REALM:
            continue
        msg = spb.SessionEnded(session_id=s["id"], user_id=s["user_id"], reason=reason)
        msg.expires_at.FromSeconds(int(rules.tokens_live_until(s["expires_at"], now)) + 1)
        uow.emit(msg, subject=s["user_id"], topic=SESSIONS_TOPIC)


def subject_revoked(
    uow: UnitOfWork, subject: str, reason: spb.SessionEndReason.ValueType, now: float
) -> None:
    """SubjectTokensRevoked: every token of `subject` issued until now is refused (tokens
    without a session, e.g. a client's, and any a SessionEnded could miss)."""
    msg = spb.SubjectTokensRevoked(subject=subject, reason=reason)
    msg.not_before.FromMicroseconds(int(now * 1e6))
    msg.expires_at.FromSeconds(int(now + rules.MAX_ACCESS_TTL) + 1)
    uow.emit(msg, subject=subject, topic=SESSIONS_TOPIC)


def account_ended(
    uow: UnitOfWork, ended: Iterable[Row], user_id: str, realm: str, now: float
) -> None:
    """An account disabled, deleted, locked or its password reset: its sessions end and its
    tokens (with or without a session) are refused; once committed, the clients that
    registered for it get a back-channel logout token for each session (Storage.announce_ended)."""
    ended = list(ended)
    if isinstance(getattr(uow, "ended_sessions", None), list):
        uow.ended_sessions.extend(ended)  # type: ignore[attr-defined]
    sessions_ended(uow, ended, ACCOUNT_CHANGED, now)
    if realm == REALM:
        subject_revoked(uow, user_id, ACCOUNT_CHANGED, now)


def client_ended(uow: UnitOfWork, repos: Any, client: Row, now: float) -> None:
    """A client system disabled or deleted: the sessions signed in through it end, and its
    own tokens are refused, whether a verifier names it by "client:<id>" or by its service
    account (the tokens' `sub`)."""
    gone = repos.sessions.revoke_open(now, "client disabled", client_id=client["client_id"])
    sessions_ended(uow, gone, ADMIN, now)
    if client["realm"] != REALM:
        return
    subject_revoked(uow, f"client:{client['client_id']}", ADMIN, now)
    if client["service_user_id"]:
        subject_revoked(uow, client["service_user_id"], ADMIN, now)
