"""Delegation (ủy quyền): the one way an official acts in another agency's documents.

An agency's leader grants one official of another agency a scope — a subset of SIGN (ký),
ISSUE (cấp số, in the agency's books) and READ_DRAFTS (đọc dự thảo) — for a period of at most
one year; a leader of the agency may revoke it, with a reason. Every action done under it
names its id in the document's history. Who may grant, revoke and use one: policy.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .errors import InvalidField, InvalidTransition

# A grant may start a little before the server's clock (the caller's clock may run behind).
CLOCK_SKEW = timedelta(minutes=5)


class Scope(enum.IntEnum):
    """Values equal the proto's DelegationScope."""

    SIGN = 1
    ISSUE = 2
    READ_DRAFTS = 3


def one_year_after(start: datetime) -> datetime:
    """The same instant a year later (29 February → 28 February)."""
    try:
        return start.replace(year=start.year + 1)
    except ValueError:
        return start.replace(year=start.year + 1, day=28)


@dataclass(frozen=True)
class Delegation:
    id: str
    agency_code: str  # the delegating agency: its documents, books and signatures
    delegate_user_id: str  # the official it is granted to
    delegate_agency_code: str  # that official's own agency
    scopes: frozenset[Scope]
    valid_from: datetime
    valid_until: datetime
    granted_by: str
    grant_time: datetime
    note: str = ""
    revoked_by: str = ""
    revoke_time: datetime | None = None
    revoke_reason: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None

    def active(self, now: datetime) -> bool:
        """Started, not expired, not revoked."""
        return not self.revoked and self.valid_from <= now < self.valid_until

    def covers(self, user_id: str, agency_code: str, scope: Scope, now: datetime) -> bool:
        return (
            self.delegate_user_id == user_id
            and self.agency_code == agency_code
            and scope in self.scopes
            and self.active(now)
        )

    def revoke(self, actor: str, now: datetime, reason: str) -> Delegation:
        if self.revoked:
            raise InvalidTransition(f"delegation {self.id} is revoked already", subject=self.id)
        if not reason.strip():
            raise InvalidField("reason", "say why the delegation is revoked")
        return replace(self, revoked_by=actor, revoke_time=now, revoke_reason=reason.strip())


def check_grant(
    *,
    agency_code: str,
    delegate_user_id: str,
    delegate_agency_code: str,
    scopes: frozenset[int],
    valid_from: datetime,
    valid_until: datetime | None,
    now: datetime,
) -> tuple[frozenset[Scope], datetime]:
    """The rules of a new delegation's fields; returns its scopes and its end. Field names
    are the request's (GrantDelegationRequest.delegation)."""
    if not delegate_user_id.strip():
        raise InvalidField("delegation.delegate_user_id", "the official it is granted to")
    if not scopes:
        raise InvalidField("delegation.scopes", "name at least one of SIGN, ISSUE, READ_DRAFTS")
    unknown = sorted(s for s in scopes if s not in Scope._value2member_map_)
    if unknown:
        raise InvalidField("delegation.scopes", f"unknown scope {unknown[0]}")
    if delegate_agency_code == agency_code:
        raise InvalidField(
            "delegation.delegate_agency_code",
            "the agency's own officials act by their roles; a delegation is for another agency's",
        )
    if valid_from < now - CLOCK_SKEW:
        raise InvalidField("delegation.valid_from", "a delegation cannot start in the past")
    if valid_until is None:
        raise InvalidField("delegation.valid_until", "the end of the delegation is required")
    if valid_until <= now or valid_until <= valid_from:
        raise InvalidField("delegation.valid_until", "must be after the start and after now")
    if valid_until > one_year_after(valid_from):
        raise InvalidField("delegation.valid_until", "a delegation lasts at most one year")
    return frozenset(Scope(s) for s in scopes), valid_until
