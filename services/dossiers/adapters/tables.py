"""The dossiers service's tables (created by migrations/versions/; a change here needs a new
revision there)."""

from __future__ import annotations

import sqlalchemy as sa

from services.dossiers.domain.figures import COUNTERS

metadata = sa.MetaData()

procedures = sa.Table(
    "procedures",
    metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("field_code", sa.String(40), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),  # the whole procedure (adapters.repository)
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    # Copies of `data` that ListProcedures filters on (revision 0007).
    sa.Column("field_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("online_level", sa.Integer, nullable=False, server_default="0"),
    sa.Column("search_text", sa.String(1100), nullable=False, server_default=""),  # folded
)

# Which agencies handle which procedure: the agency filter of ListProcedures without reading
# every procedure's JSON.
procedure_agencies = sa.Table(
    "procedure_agencies",
    metadata,
    sa.Column("procedure_code", sa.String(40), primary_key=True),
    sa.Column("agency_code", sa.String(35), primary_key=True),
    sa.Index("ix_procedure_agencies_agency", "agency_code", "procedure_code"),
)

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("receipt_code", sa.String(60), nullable=False, unique=True),
    sa.Column("request_id", sa.String(64), nullable=True, unique=True),
    sa.Column("procedure_code", sa.String(40), nullable=False),
    sa.Column("procedure_name", sa.String(1000), nullable=False),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("channel", sa.Integer, nullable=False),
    sa.Column("applicant", sa.JSON, nullable=False),
    sa.Column("papers", sa.JSON, nullable=False),
    sa.Column("processing_days", sa.Integer, nullable=False),
    sa.Column("submit_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("accept_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("finish_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("return_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("receiver_user_id", sa.String(64), nullable=False),
    sa.Column("handler_user_id", sa.String(64), nullable=False),
    sa.Column("fee_vnd", sa.BigInteger, nullable=False),
    sa.Column("fee_paid", sa.Boolean, nullable=False),
    sa.Column("result_number", sa.String(100), nullable=False),
    sa.Column("result_attachment_id", sa.String(100), nullable=False),
    sa.Column("on_time", sa.Boolean, nullable=True),
    sa.Column("status_reason", sa.String(2000), nullable=False),
    sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("paused_days", sa.Integer, nullable=False),
    sa.Column("portal_code", sa.String(64), nullable=True, unique=True),
    sa.Column("payment_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("payment_url", sa.String(500), nullable=False, server_default=""),
    sa.Column("paid_online", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("rating", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rating_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("postal_tracking_number", sa.String(13), nullable=False, server_default=""),
    sa.Column("postmark_date", sa.Date, nullable=True),
    # Whether the national portal acknowledged the current status; changed without a new
    # version (the sync must not make a clerk's etag stale).
    sa.Column("portal_synced", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("rescheduled_date", sa.Date, nullable=True),
    sa.Column("apology_reason", sa.String(2000), nullable=False, server_default=""),
    sa.Column("apology_time", sa.DateTime(timezone=True), nullable=True),
    sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The officials' search (revision 0007), kept by the repository on every write: the
    # applicant's and organisation's names folded (lgsp.textfold.fold, " "-led so a word's start
    # is " word"), the PIN, the enterprise or tax code without dashes.
    sa.Column("applicant_key", sa.String(1100), nullable=False, server_default=""),
    sa.Column("applicant_number", sa.String(20), nullable=False, server_default=""),
    sa.Column("applicant_org_code", sa.String(20), nullable=False, server_default=""),
    sa.Index("ix_dossiers_agency_status", "agency_code", "status"),
    sa.Index("ix_dossiers_procedure", "procedure_code"),
    sa.Index("ix_dossiers_payment", "payment_id"),
    sa.Index("ix_dossiers_agency_submit", "agency_code", "submit_time", "id"),
    sa.Index("ix_dossiers_submit", "submit_time", "id"),
    sa.Index("ix_dossiers_applicant_number", "applicant_number"),
    sa.Index("ix_dossiers_applicant_org_code", "applicant_org_code"),
    # The open dossiers of the figures (in progress at the end of a period), index only.
    sa.Index(
        "ix_dossiers_open", "status", "agency_code", "procedure_code", "due_date", "accept_time"
    ),
    # LIKE 'prefix%' on PostgreSQL uses only a pattern-ops index (any collation but C).
    sa.Index(
        "ix_dossiers_receipt_pattern",
        "receipt_code",
        postgresql_ops={"receipt_code": "varchar_pattern_ops"},
    ),
)

# The figures (domain/figures.py), kept in the unit of work of every change of a dossier:
# one row per grain (d = day, m = month, `day` then its first day), province day of the event,
# agency and procedure; each counter a sum of the dossiers' contributions.
dossier_figures = sa.Table(
    "dossier_figures",
    metadata,
    sa.Column("grain", sa.String(1), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("agency_code", sa.String(35), primary_key=True),
    sa.Column("procedure_code", sa.String(40), primary_key=True),
    sa.Column("month", sa.Date, nullable=False),
    *(sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in COUNTERS),
    sa.Index("ix_dossier_figures_agency", "agency_code", "grain", "day"),
)

dossier_history = sa.Table(
    "dossier_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dossier_id", sa.String(36), nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("from_status", sa.Integer, nullable=True),
    sa.Column("to_status", sa.Integer, nullable=False),
    sa.Column("comment", sa.String(2000), nullable=False),
    sa.Index("ix_dossier_history_dossier", "dossier_id", "id"),
)

# The last sequence number given per receiving agency and day (the receipt code's last digits).
receipt_sequences = sa.Table(
    "receipt_sequences",
    metadata,
    sa.Column("agency_code", sa.String(35), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

# Every payment notice of the national payment platform taken in (callback or reconciliation),
# one row per payment: the key that makes a replayed notice a no-op, and what reconciliation
# compares with the platform's transactions. `outcome`: recorded (the dossier moved on),
# not_waiting (the dossier was withdrawn, stopped or paid at the desk: a refund case),
# mismatch (amount or receipt code differ), unknown (no dossier has the payment).
payment_receipts = sa.Table(
    "payment_receipts",
    metadata,
    sa.Column("payment_id", sa.String(64), primary_key=True),
    sa.Column("dossier_id", sa.String(36), nullable=True),
    sa.Column("receipt_code", sa.String(60), nullable=False),
    sa.Column("amount_vnd", sa.BigInteger, nullable=False),
    sa.Column("transaction_ref", sa.String(64), nullable=False),
    sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # callback | reconcile | desk
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_payment_receipts_paid", "paid_at"),
)
