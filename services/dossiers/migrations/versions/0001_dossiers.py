"""Platform tables (outbox, processed_events) and the procedures, dossiers, their history and
the receipt sequences.

Revision ID: 0001
Revises:
"""

from alembic import op

from lgsp.db import downgrade_platform_tables, upgrade_platform_tables
from services.dossiers.adapters.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_platform_tables()
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
    downgrade_platform_tables()
