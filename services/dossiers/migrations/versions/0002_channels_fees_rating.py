"""Dossiers: the portal's code (online channel), the payment platform's payment, the
applicant's satisfaction rating.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite cannot add a UNIQUE constraint to an existing table in place.
    with op.batch_alter_table("dossiers") as t:
        t.add_column(sa.Column("portal_code", sa.String(64), nullable=True))
        t.add_column(sa.Column("payment_id", sa.String(64), nullable=False, server_default=""))
        t.add_column(sa.Column("payment_url", sa.String(500), nullable=False, server_default=""))
        t.add_column(
            sa.Column("paid_online", sa.Boolean, nullable=False, server_default=sa.false())
        )
        t.add_column(sa.Column("rating", sa.Integer, nullable=False, server_default="0"))
        t.add_column(sa.Column("rating_time", sa.DateTime(timezone=True), nullable=True))
        t.create_unique_constraint("uq_dossiers_portal_code", ["portal_code"])


def downgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        t.drop_constraint("uq_dossiers_portal_code", type_="unique")
        for column in ("rating_time", "rating", "paid_online", "payment_url", "payment_id"):
            t.drop_column(column)
        t.drop_column("portal_code")
