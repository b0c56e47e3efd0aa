"""The group tree (a group's parent) and realm roles granted to a group (held by every
member, in the group's agency).

Revision ID: 0007_group_tree
Revises: 0006_client_jwks
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_group_tree"
down_revision = "0006_client_jwks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.create_index("ix_groups_parent_id", ["parent_id"])
    op.create_table(
        "group_realm_roles",
        sa.Column("group_id", sa.String(36), sa.ForeignKey("groups.id", ondelete="CASCADE")),
        sa.Column("role", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "role", name="pk_group_realm_roles"),
    )


def downgrade() -> None:
    op.drop_table("group_realm_roles")
    with op.batch_alter_table("groups") as batch:
        batch.drop_index("ix_groups_parent_id")
        batch.drop_column("parent_id")
