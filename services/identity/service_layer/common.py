"""What every directory use case shares: its unit of work, the audit row and event written
with each change, the administration check, page tokens, and the account message (an account
is shown with its grants and groups)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from google.protobuf.message import Message

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.adapters import proto
from services.identity.adapters.unit_of_work import IdentityUnitOfWork, Repositories, Storage
from services.identity.domain.access import Actor, may_administer, refuse_agency_admin
from services.identity.domain.errors import Invalid

Row = Any  # a stored record (SQLAlchemy RowMapping)


def now() -> float:
    return time.time()


def encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_page(token: str) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise Invalid("page_token", "is not a token returned by this service") from None


def page(size: int, token: str, default: int, maximum: int) -> tuple[int, int]:
    """(offset, size) of the page a list request asks for."""
    if size < 0:
        raise Invalid("page_size", "must not be negative")
    return decode_page(token), min(size or default, maximum)


def next_page(offset: int, size: int, more: bool) -> str:
    return encode_page(offset + size) if more else ""


def account_message(repos: Repositories, row: Row) -> pb.User:
    return proto.user(row, repos.grants.of(row["id"]), repos.groups.ids_of(row["id"]), now())


def group_message(repos: Repositories, row: Row) -> pb.Group:
    return proto.group(row, repos.groups.members(row["id"]))


def require_agency_admin(repos: Repositories, actor: Actor, agency_code: str | None) -> None:
    """Platform admins, or agency admins of agency_code (or of an ancestor, sub-agencies)."""
    grants: list[tuple[str, bool]] = []
    if not actor.is_platform_admin and agency_code and actor.id and "agency_admin" in actor.roles:
        grants = repos.grants.admin_grants(actor.id, repos.agencies.ancestors(agency_code))
    if not may_administer(actor, agency_code, grants):
        raise refuse_agency_admin(agency_code)


class DirectoryUseCases:
    """Base of the directory's use cases: changes run in one unit of work that writes the rows,
    an audit row and the event (lgsp.identity.v1) together; validation and permission checks
    come first, so a refused request changes nothing. Synchronous: async callers run them in
    a worker thread."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def change(self) -> IdentityUnitOfWork:
        return self.storage.change()

    def commit(self, uow: IdentityUnitOfWork) -> None:
        self.storage.committed(uow)

    @staticmethod
    def record(
        uow: IdentityUnitOfWork,
        actor: Actor,
        action: str,
        subject: str,
        event: Message | None,
        **details: Any,
    ) -> None:
        """The audit row of a change and, when it is published, its event."""
        uow.repos.audit.write(actor.id, action, subject, remote_ip=actor.remote_ip, **details)
        if event is not None:
            uow.emit(event, subject=subject)
