"""Platform tables and the test service's own tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from lgsp.db import downgrade_platform_tables, upgrade_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_platform_tables()
    op.create_table(
        "notes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
    )
    # One row per handler run that committed: the "effect" the crash tests count.
    op.create_table(
        "effects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("effects")
    op.drop_table("notes")
    downgrade_platform_tables()
