"""Required actions an administrator set on an account (Keycloak's CONFIGURE_TOTP,
VERIFY_PROFILE; UPDATE_PASSWORD stays users.password_temporary): the account signs in
nowhere until they are done.

Revision ID: 0004_required_actions
Revises: 0003_sso_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_required_actions"
down_revision = "0003_sso_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("required_actions", sa.String(200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("required_actions")
