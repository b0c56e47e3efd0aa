"""Dossiers: the postal channel's tracking number and postmark, and whether the national
portal has the current status.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        t.add_column(
            sa.Column("postal_tracking_number", sa.String(13), nullable=False, server_default="")
        )
        t.add_column(sa.Column("postmark_date", sa.Date, nullable=True))
        t.add_column(
            sa.Column("portal_synced", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        for column in ("portal_synced", "postmark_date", "postal_tracking_number"):
            t.drop_column(column)
