"""Composite client roles: holding a client role holds its child client roles too (Keycloak's
clients/{id}/roles/{name}/composites), expanded in tokens' resource_access.

Revision ID: 0009_client_role_composites
Revises: 0008_role_composites
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_client_role_composites"
down_revision = "0008_role_composites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_role_composites",
        sa.Column("parent_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
        sa.Column("child_id", sa.String(36), sa.ForeignKey("client_roles.id", ondelete="CASCADE")),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name="pk_client_role_composites"),
    )


def downgrade() -> None:
    op.drop_table("client_role_composites")
