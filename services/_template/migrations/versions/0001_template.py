"""Platform tables (outbox, processed_events) and the notices table.

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
        "notices",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("posted_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_notices_agency_posted", "notices", ["agency_code", "posted_time"])


def downgrade() -> None:
    op.drop_index("ix_notices_agency_posted", table_name="notices")
    op.drop_table("notices")
    downgrade_platform_tables()
