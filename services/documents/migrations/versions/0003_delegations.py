"""Delegations (ủy quyền) and the delegation an action in a document's history was done under.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("delegate_user_id", sa.String(64), nullable=False),
        sa.Column("delegate_agency_code", sa.String(35), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("valid_from", TZ, nullable=False),
        sa.Column("valid_until", TZ, nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("revoked_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("revoked_at", TZ),
        sa.Column("revoke_reason", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_delegations_delegate", "delegations", ["delegate_user_id", "agency_code"])
    op.create_index("ix_delegations_agency", "delegations", ["agency_code", "granted_at"])
    with op.batch_alter_table("document_history") as batch:
        batch.add_column(
            sa.Column("delegation_id", sa.String(36), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("document_history") as batch:
        batch.drop_column("delegation_id")
    op.drop_table("delegations")
