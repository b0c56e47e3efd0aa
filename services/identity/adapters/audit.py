"""The audit log and the idempotency records of create requests."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

Row = Any  # a SQLAlchemy RowMapping

_AUDIT_INSERT = sa.insert(t.audit_log)


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.s = session

    def write(
        self,
        actor_id: str,
        action: str,
        subject: str,
        outcome: str = "ok",
        remote_ip: str = "",
        **details: Any,
    ) -> None:
        self.s.execute(
            _AUDIT_INSERT,  # parameters apart from the statement: its compiled form is cached
            {
                "at": time.time(),
                "actor": actor_id or "system",
                "action": action,
                "subject": subject,
                "outcome": outcome,
                "remote_ip": remote_ip,
                "details": details,
            },
        )

    def select(
        self,
        *,
        sign_ins: bool,
        actions: tuple[str, ...],
        actor: str = "",
        subject: str = "",
        since: float | None = None,
        until: float | None = None,
        first: int = 0,
        size: int = 100,
    ) -> list[Row]:
        """Rows newest first: the sign-in actions (`actions`) or every other one."""
        c = t.audit_log.c
        q = sa.select(t.audit_log).where(
            c.action.in_(actions) if sign_ins else c.action.not_in(actions)
        )
        if actor:
            q = q.where(c.actor == actor)
        if subject:
            q = q.where(c.subject == subject)
        if since is not None:
            q = q.where(c.at >= since)
        if until is not None:
            q = q.where(c.at < until)
        q = q.order_by(c.id.desc()).offset(first).limit(size)
        return list(self.s.execute(q).mappings().all())


class RequestLog:
    """Create requests' request_id → the id they created, so a retry does not create twice."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def result_of(self, request_id: str) -> str | None:
        q = sa.select(t.idempotency.c.result_id).where(t.idempotency.c.request_id == request_id)
        return self.s.execute(q).scalar()

    def record(self, request_id: str, kind: str, result_id: str) -> None:
        self.s.execute(
            sa.insert(t.idempotency).values(request_id=request_id, kind=kind, result_id=result_id)
        )
