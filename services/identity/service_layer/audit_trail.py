"""Reading identity's audit log: the sign-in rows (Keycloak's events) and the directory
changes (Keycloak's admin events)."""

from __future__ import annotations

from typing import Any

from services.identity.adapters.unit_of_work import Storage

# What the token path writes: a sign-in (login page, password grant, client credentials), a
# code within an SSO session, a refresh, a spent refresh token or code presented again, a
# logout. Every other action is a change to the directory.
SIGN_IN_ACTIONS = ("login", "login.sso", "refresh", "refresh.reuse", "code.replay", "logout")


class AuditTrail:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def sign_ins(
        self, user: str, since: float | None, until: float | None, first: int, size: int
    ) -> list[Any]:
        with self.storage.read() as r:
            return r.audit.select(
                sign_ins=True,
                actions=SIGN_IN_ACTIONS,
                subject=user,
                since=since,
                until=until,
                first=first,
                size=size,
            )

    def changes(
        self, actor: str, since: float | None, until: float | None, first: int, size: int
    ) -> list[Any]:
        with self.storage.read() as r:
            return r.audit.select(
                sign_ins=False,
                actions=SIGN_IN_ACTIONS,
                actor=actor,
                since=since,
                until=until,
                first=first,
                size=size,
            )
