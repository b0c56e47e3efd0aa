"""The audit log and the idempotency records of create requests."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.identity.adapters import tables as t

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
