"""The gateway database: member registry, access rights, their audit trail, the message log.

The message log stores times as fixed-width UTC text ("2025-07-01T08:00:00.123456Z"), so the
value hashed into an entry is exactly the value stored on SQLite and PostgreSQL alike, and
text order is time order.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

MIGRATIONS = Path(__file__).parent / "migrations"

metadata = sa.MetaData()

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

members = sa.Table(
    "members",
    metadata,
    sa.Column("code", sa.String(80), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("client_id", sa.String(255), nullable=False, unique=True),
    sa.Column("endpoint", sa.String(500), nullable=False, default=""),
    sa.Column("certificate_sha256", sa.String(64), nullable=False, default=""),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("contact_email", sa.String(255), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
)

access_rights = sa.Table(
    "access_rights",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "member_code", sa.String(80), sa.ForeignKey("members.code"), nullable=False, index=True
    ),
    sa.Column("kind", sa.String(8), nullable=False),  # "service" or "topic"
    sa.Column("service", sa.String(255), nullable=False, default=""),
    sa.Column("methods", sa.JSON, nullable=False),  # [] = every method of the service
    sa.Column("topic", sa.String(255), nullable=False, default=""),
    sa.Column("access", sa.Integer, nullable=False, default=0),
    sa.Column("event_types", sa.JSON, nullable=False),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=False, default=0),
    sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("legal_basis", sa.Text, nullable=False, default=""),
    sa.Column("granted_by", sa.String(255), nullable=False, default=""),
    sa.Column("grant_time", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("member_code", sa.String(80), nullable=False, index=True),
    sa.Column("details", sa.JSON, nullable=False),
)

message_log = sa.Table(
    "message_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("id", sa.String(36), nullable=False),
    sa.Column("time", sa.String(32), nullable=False, index=True),
    sa.Column("client_member", sa.String(80), nullable=False, index=True),
    sa.Column("service_member", sa.String(80), nullable=False),
    sa.Column("caller", sa.String(255), nullable=False),
    sa.Column("method", sa.String(255), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("duration_us", sa.BigInteger, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("response_sha256", sa.String(64), nullable=False),
    sa.Column("request_size", sa.BigInteger, nullable=False),
    sa.Column("response_size", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

# A seal signs the hash of its last entry, which by the chain commits to every entry before.
log_seals = sa.Table(
    "log_seals",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),  # hex Ed25519
    sa.Column("sealed_at", sa.String(32), nullable=False),
)

log_keys = sa.Table(
    "log_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("public_key", sa.String(64), nullable=False),  # hex raw Ed25519
    sa.Column("created_at", sa.String(32), nullable=False),
)
