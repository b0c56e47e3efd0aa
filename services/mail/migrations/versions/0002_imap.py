"""IMAP over the store: the \\Deleted and \\Draft flags and keywords on messages, and
subscriptions on folders (docs/mail.md, "IMAP"). Additive: defaults keep older rows valid.

Revision ID: 0002_imap
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_imap"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("draft", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("keywords", sa.JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("folders") as batch:
        batch.add_column(
            sa.Column("subscribed", sa.Boolean, nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("folders") as batch:
        batch.drop_column("subscribed")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("keywords")
        batch.drop_column("draft")
        batch.drop_column("deleted")
