"""Platform tables and the gateway's member registry, access rights, audit and message log.

Revision ID: 0001
Revises:
"""

from alembic import op

from lgsp.db import downgrade_platform_tables, upgrade_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The tables as services.gateway.tables declares them at this revision; a later change to that
    # module comes with its own revision (and this one then freezes a copy), as in identity.
    from services.gateway.tables import metadata

    upgrade_platform_tables()
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    from services.gateway.tables import metadata

    metadata.drop_all(op.get_bind())
    downgrade_platform_tables()
