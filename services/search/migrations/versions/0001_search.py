"""Platform tables only (outbox, processed_events): the search service keeps its own state
beside each index generation (services/search/adapters/state.py), not in this database.

Revision ID: 0001
Revises:
"""

from lgsp.db import downgrade_platform_tables, upgrade_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_platform_tables()


def downgrade() -> None:
    downgrade_platform_tables()
