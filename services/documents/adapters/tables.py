"""The documents service's tables. Columns exist for what is queried or constrained; the full
record is kept in `body` (the proto Document / DirectiveTask), so a new field needs no
migration unless it must be queried."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TZ = sa.DateTime(timezone=True)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("direction", sa.SmallInteger, nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("type_code", sa.String(16), nullable=False),
    # The entry in this agency's own book: the issue number (outgoing) or the arrival number
    # (incoming). Unique per agency, book and year: the last guard against a double number.
    sa.Column("book", sa.String(16)),
    sa.Column("book_year", sa.Integer),
    sa.Column("book_number", sa.Integer),
    sa.Column("number_notation", sa.String(100), nullable=False, server_default=""),
    sa.Column("sender_agency_code", sa.String(35), nullable=False, server_default=""),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("confidentiality", sa.SmallInteger, nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("electronic", sa.Boolean, nullable=False),
    sa.Column("digitally_signed", sa.Boolean, nullable=False),
    sa.Column("promulgation_date", sa.Date),
    sa.Column("arrival_time", TZ),
    sa.Column("due_date", sa.Date),
    sa.Column("complete_time", TZ),
    sa.Column("handler_user_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_by", sa.String(64), nullable=False),
    # Idempotency key of the creating request (CreateDraft/RegisterIncoming request_id, or the
    # edXML message id of an arrival).
    sa.Column("request_key", sa.String(128)),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("updated_at", TZ, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint(
        "agency_code", "book", "book_year", "book_number", name="uq_documents_book_entry"
    ),
    sa.UniqueConstraint("agency_code", "request_key", name="uq_documents_request"),
    sa.Index("ix_documents_agency_created", "agency_code", "created_at"),
    sa.Index("ix_documents_notation", "agency_code", "number_notation"),
    sa.Index("ix_documents_sender", "sender_agency_code", "number_notation"),
)

document_versions = sa.Table(
    "document_versions",
    metadata,
    sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("author_id", sa.String(64), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

document_history = sa.Table(
    "document_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False, index=True
    ),
    sa.Column("at", TZ, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("from_status", sa.String(40), nullable=False),
    sa.Column("to_status", sa.String(40), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    # The delegation the actor acted under (migration 0003); "" for the actor's own role.
    sa.Column("delegation_id", sa.String(36), nullable=False, server_default=""),
)

directive_tasks = sa.Table(
    "directive_tasks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False, index=True
    ),
    sa.Column("directing_agency_code", sa.String(35), nullable=False),
    sa.Column("assignee_agency_code", sa.String(35), nullable=False, index=True),
    sa.Column("assignee_user_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("due_date", sa.Date),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

# One counter per agency, book and year: the row is locked (FOR UPDATE / BEGIN IMMEDIATE) and
# incremented in the transaction that uses the number, so numbers are unique and gap-free.
number_books = sa.Table(
    "number_books",
    metadata,
    sa.Column("agency_code", sa.String(35), primary_key=True),
    sa.Column("book", sa.String(16), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)

# The files of a document. The bytes live in the attachment store under `sha256` (shared by
# every row with the same content); a main text replaced by a later version (a new upload, or
# the signed copy SignDocument makes) keeps its row with current = false.
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(127), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("main", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Column("digitally_signed", sa.Boolean, nullable=False),
    sa.Column("signer_serial", sa.String(64), nullable=False, server_default=""),
    sa.Column("replaces_id", sa.String(36), nullable=False, server_default=""),
    sa.Column("uploaded_by", sa.String(64), nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Index("ix_attachments_document", "document_id", "created_at"),
    sa.Index("ix_attachments_sha256", "sha256"),
)

# Delegations (ủy quyền, domain/delegation.py): an agency's grant of SIGN / ISSUE / READ_DRAFTS
# to an official of another agency for a period; revoked rows stay (the history names them).
delegations = sa.Table(
    "delegations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("delegate_user_id", sa.String(64), nullable=False),
    sa.Column("delegate_agency_code", sa.String(35), nullable=False),
    sa.Column("scopes", sa.String(64), nullable=False),  # comma-separated Scope names
    sa.Column("valid_from", TZ, nullable=False),
    sa.Column("valid_until", TZ, nullable=False),
    sa.Column("granted_by", sa.String(64), nullable=False),
    sa.Column("granted_at", TZ, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("revoked_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("revoked_at", TZ),
    sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_delegations_delegate", "delegate_user_id", "agency_code"),
    sa.Index("ix_delegations_agency", "agency_code", "granted_at"),
)
