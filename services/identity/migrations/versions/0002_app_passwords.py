"""App passwords: officials' passwords for mail clients, and the clients that take them.

Revision ID: 0002_app_passwords
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_app_passwords"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("revoked_reason", sa.String(64), nullable=False),
    )
    op.create_index("ix_app_passwords_user", "app_passwords", ["user_id", "revoked_at"])
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("allow_app_passwords", sa.Boolean, nullable=False, server_default=sa.false())
        )
    # The mail service's client, where it was seeded before this revision (seed.py sets the
    # flag on new ones): its SMTP AUTH is what app passwords are for.
    op.execute(
        "UPDATE clients SET allow_app_passwords = TRUE WHERE realm = 'lgsp' AND client_id = 'mail'"
    )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("allow_app_passwords")
    op.drop_index("ix_app_passwords_user", table_name="app_passwords")
    op.drop_table("app_passwords")
