"""Dossiers: online fees — the payment notices taken in, and dossiers found by payment id.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_dossiers_payment", "dossiers", ["payment_id"])
    op.create_table(
        "payment_receipts",
        sa.Column("payment_id", sa.String(64), primary_key=True),
        sa.Column("dossier_id", sa.String(36), nullable=True),
        sa.Column("receipt_code", sa.String(60), nullable=False),
        sa.Column("amount_vnd", sa.BigInteger, nullable=False),
        sa.Column("transaction_ref", sa.String(64), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_payment_receipts_paid", "payment_receipts", ["paid_at"])


def downgrade() -> None:
    op.drop_index("ix_payment_receipts_paid", "payment_receipts")
    op.drop_table("payment_receipts")
    op.drop_index("ix_dossiers_payment", "dossiers")
