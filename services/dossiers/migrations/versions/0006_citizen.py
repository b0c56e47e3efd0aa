"""Dossiers: the last apology letter (new appointment, reason, time).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        t.add_column(sa.Column("rescheduled_date", sa.Date, nullable=True))
        t.add_column(
            sa.Column("apology_reason", sa.String(2000), nullable=False, server_default="")
        )
        t.add_column(sa.Column("apology_time", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        for column in ("apology_time", "apology_reason", "rescheduled_date"):
            t.drop_column(column)
