"""A realm's settings set over the admin REST API (token lifetimes, SSO session lifetimes,
brute-force detection, password policy), as JSON over the configured defaults.

Revision ID: 0010_realm_settings
Revises: 0009_client_role_composites
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_realm_settings"
down_revision = "0009_client_role_composites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realm_settings",
        sa.Column("realm", sa.String(64), primary_key=True),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("realm_settings")
