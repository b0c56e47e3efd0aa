"""Client roles (Keycloak's roles of one client, carried in tokens as resource_access) and
their grants to accounts and groups.

Revision ID: 0005_client_roles
Revises: 0004_required_actions
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_client_roles"
down_revision = "0004_required_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_roles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(300), nullable=False),
        sa.UniqueConstraint("realm", "client_id", "name", name="uq_client_roles_name"),
    )
    op.create_table(
        "client_role_grants",
        sa.Column("role_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
        sa.Column("holder_kind", sa.String(8), nullable=False),
        sa.Column("holder_id", sa.String(36), nullable=False),
        sa.Column("granted_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "role_id", "holder_kind", "holder_id", name="pk_client_role_grants"
        ),
        sa.Index("ix_client_role_grants_holder", "holder_kind", "holder_id"),
    )


def downgrade() -> None:
    op.drop_table("client_role_grants")
    op.drop_table("client_roles")
