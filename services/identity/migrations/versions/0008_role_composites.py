"""Composite realm roles: holding the parent role holds its children too (in the same agency).

Revision ID: 0008_role_composites
Revises: 0007_group_tree
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_role_composites"
down_revision = "0007_group_tree"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "role_composites",
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64), nullable=False),
        sa.Column("child", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("realm", "parent", "child", name="pk_role_composites"),
    )


def downgrade() -> None:
    op.drop_table("role_composites")
