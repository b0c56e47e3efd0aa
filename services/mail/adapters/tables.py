"""The mail service's tables (created by migrations/versions/; a change here needs a new
revision there).

The raw RFC 5322 bytes live in `message_blobs`, keyed by their sha256 (one copy for every
recipient of a message), in the same database as the rows that point at them: a delivery is
one transaction, so a message answered 250 is stored whole or not at all.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Identity's officials as mail follows them (UserCreated/Updated/Disabled/Enabled).
mail_users = sa.Table(
    "mail_users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(200), nullable=False, index=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # [[role, agency_code], …]: who holds the clerk role where (agency mailboxes, later).
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("address", sa.String(254), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("kind", sa.Integer, nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False, index=True),
    # One personal mailbox per official: the same user always keeps the same address.
    sa.Column("owner_user_id", sa.String(64), nullable=True, unique=True),
    sa.Column("delegate_user_ids", sa.JSON, nullable=False),
    sa.Column("quota_bytes", sa.BigInteger, nullable=False),
    sa.Column("used_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("purged", sa.Boolean, nullable=False),
    sa.Column("search_text", sa.String(500), nullable=False),  # folded address + name
    sa.Column("version", sa.Integer, nullable=False),
    # The owner receives one daily summary of notices instead of each (0004_notices).
    sa.Column("daily_digest", sa.Boolean, nullable=False, server_default=sa.false()),
    # AGENCY mailboxes: the officials holding the clerk role in its agency, kept from
    # identity's events (service_layer/vanthu.py); they open it as implicit delegates.
    sa.Column("clerk_user_ids", sa.JSON, nullable=False, server_default="[]"),
)

folders = sa.Table(
    "folders",
    metadata,
    sa.Column("mailbox_address", sa.String(254), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.Integer, nullable=False),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uidnext", sa.BigInteger, nullable=False),
    # IMAP SUBSCRIBE/UNSUBSCRIBE (0002_imap); every folder starts subscribed.
    sa.Column("subscribed", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("mailbox_address", "name", name="uq_folders_name"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("mailbox_address", sa.String(254), nullable=False),
    sa.Column("folder_id", sa.String(100), nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("subject", sa.String(1000), nullable=False),
    sa.Column("sender", sa.JSON, nullable=False),  # [address, display name]
    sa.Column("recipients", sa.JSON, nullable=False),  # {"to": [[a, n]…], "cc": …, "bcc": …}
    sa.Column("attachments", sa.JSON, nullable=False),  # [[id, name, type, size, sha256]…]
    sa.Column("in_reply_to", sa.String(255), nullable=False),
    sa.Column("send_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("internal_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("blob_sha256", sa.String(64), nullable=False),
    sa.Column("seen", sa.Boolean, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
    # IMAP's \Deleted (until EXPUNGE) and \Draft flags and its keywords (0002_imap).
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("draft", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("keywords", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("search_text", sa.String(2000), nullable=False),  # folded subject + addresses
    sa.Column("related_document_id", sa.String(64), nullable=False),
    sa.Column("related_receipt_code", sa.String(60), nullable=False),
    # SendMessage's request_id on the sender's copy: a retry does not send again.
    sa.Column("request_id", sa.String(64), nullable=True),
    # SPF and DKIM results at receipt (RFC 8601 words), "" for mail that was not checked.
    sa.Column("auth_spf", sa.String(20), nullable=False, server_default=""),
    sa.Column("auth_dkim", sa.String(20), nullable=False, server_default=""),
    sa.Column("auth_summary", sa.String(1000), nullable=False, server_default=""),
    sa.UniqueConstraint("mailbox_address", "folder_id", "uid", name="uq_messages_uid"),
    sa.UniqueConstraint("mailbox_address", "request_id", name="uq_messages_request"),
    sa.Index("ix_messages_folder_date", "mailbox_address", "folder_id", "internal_date"),
)

message_blobs = sa.Table(
    "message_blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

# Mail for recipients outside the platform, one row per recipient, until the smarthost took
# it (the row is deleted) or it bounced (docs/mail.md, "Relay and bounces").
outgoing = sa.Table(
    "outgoing",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("message_ref", sa.String(36), nullable=False),  # the sender's copy, if any
    sa.Column("blob_sha256", sa.String(64), nullable=False),
    sa.Column("mail_from", sa.String(254), nullable=False),
    sa.Column("rcpt_to", sa.String(254), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=False, index=True),
    # The relay worker's claim and its lease (a dead worker's rows are taken again after it).
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.String(1000), nullable=False, server_default=""),
)

# Directive tasks followed from documents' events for their reminders (service_layer/reminders.py).
notice_tasks = sa.Table(
    "notice_tasks",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("document_id", sa.String(64), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("assignee_agency_code", sa.String(35), nullable=False),
    sa.Column("assignee_user_id", sa.String(64), nullable=False),
    sa.Column("due_date", sa.String(10), nullable=False),  # YYYY-MM-DD, "" = none
    sa.Column("open", sa.Boolean, nullable=False),  # false once done or cancelled
    sa.Column("nearing_sent", sa.Boolean, nullable=False),
    sa.Column("overdue_sent", sa.Boolean, nullable=False),
    sa.Index("ix_notice_tasks_open_due", "open", "due_date"),
)

# Incoming documents as their DocumentReceived told (an assignment notice names them).
notice_documents = sa.Table(
    "notice_documents",
    metadata,
    sa.Column("document_id", sa.String(64), primary_key=True),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("number_notation", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(1000), nullable=False),  # "" for a confidential one
    sa.Column("sender_agency_name", sa.String(300), nullable=False),
    sa.Column("confidential", sa.Boolean, nullable=False),
)

# Notices held for a mailbox whose owner chose the daily digest.
digest_items = sa.Table(
    "digest_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("mailbox_address", sa.String(254), nullable=False, index=True),
    sa.Column("subject", sa.String(1000), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("related_document_id", sa.String(64), nullable=False),
    sa.Column("related_receipt_code", sa.String(60), nullable=False),
    sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
)

# One row per mailbox and province day a digest went out: never twice, even after a restart.
digests_sent = sa.Table(
    "digests_sent",
    metadata,
    sa.Column("mailbox_address", sa.String(254), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("notice_count", sa.Integer, nullable=False),
)
