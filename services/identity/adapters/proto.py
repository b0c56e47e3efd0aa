"""Rows (mappings from the identity tables) to lgsp.api.identity.v1 messages, for responses
and for the events the unit of work writes to the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.identity.v1 import identity_pb2 as pb
from services.identity.domain.directory import account_status, etag
from services.identity.domain.model import ROLE_NUMBERS

Row = Any  # a SQLAlchemy RowMapping (or any str-keyed mapping)


def ts(epoch: float | None) -> Timestamp | None:
    if epoch is None:
        return None
    t = Timestamp()
    t.FromNanoseconds(int(epoch * 1e9))
    return t


def grant(row: Row) -> pb.RoleGrant:
    return pb.RoleGrant(
        role=ROLE_NUMBERS.get(row["role"], 0),  # type: ignore[arg-type]
        agency_code=row["agency_code"],
        include_sub_agencies=row["include_sub"],
        grant_time=ts(row["granted_at"]),
        granted_by=row["granted_by"],
    )


def user(row: Row, grants: Iterable[Row], group_ids: Iterable[str], now: float) -> pb.User:
    return pb.User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        email=row["email"],
        phone=row["phone"],
        agency_code=row["agency_code"] or "",
        position=row["position"],
        status=account_status(row, now),  # type: ignore[arg-type]
        role_grants=[grant(g) for g in grants if g["role"] in ROLE_NUMBERS],
        group_ids=sorted(group_ids),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        last_login_time=ts(row["last_login_at"]),
        etag=etag(row["version"]),
        mfa_enabled=bool(row["totp_secret"]),
    )


def agency(row: Row) -> pb.Agency:
    return pb.Agency(
        code=row["code"],
        name=row["name"],
        short_name=row["short_name"],
        level=row["level"],
        parent_code=row["parent_code"] or "",
        mail_domain=row["mail_domain"],
        address=row["address"],
        phone=row["phone"],
        email=row["email"],
        place_name=row["place_name"],
        status=row["status"],
        successor_code=row["successor_code"],
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag(row["version"]),
    )


def group(row: Row, member_ids: Iterable[str]) -> pb.Group:
    return pb.Group(
        id=row["id"],
        name=row["name"],
        agency_code=row["agency_code"],
        description=row["description"],
        member_ids=sorted(member_ids),
        create_time=ts(row["created_at"]),
        update_time=ts(row["updated_at"]),
        etag=etag(row["version"]),
    )


def client(row: Row) -> pb.ClientSystem:
    return pb.ClientSystem(
        client_id=row["client_id"],
        display_name=row["display_name"],
        owner_agency_code=row["owner_agency_code"],
        scopes=list(row["scopes"] or []),
        status=row["status"],
        token_ttl_seconds=row["token_ttl"],
        create_time=ts(row["created_at"]),
        secret_rotate_time=ts(row["secret_rotated_at"]),
        etag=etag(row["version"]),
        allow_app_passwords=row["allow_app_passwords"],
    )


def app_password(row: Row) -> pb.AppPassword:
    return pb.AppPassword(
        id=row["id"],
        name=row["name"],
        create_time=ts(row["created_at"]),
        last_use_time=ts(row["last_used_at"]),
    )
