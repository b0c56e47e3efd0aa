"""The SSO session: one browser sign-in that every client's authorization request reuses
until it idles out, reaches its maximum life or is logged out; the client sessions it
started; how the sign-in was authenticated (acr/amr, auth_time); and the clients' back-channel
logout URIs.

Revision ID: 0003_sso_sessions
Revises: 0002_app_passwords
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sso_sessions"
down_revision = "0002_app_passwords"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("realm", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False, index=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.Float, nullable=False),
        sa.Column("acr", sa.String(16), nullable=False),
        sa.Column("amr", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("revoked_reason", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("sso_session_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("auth_time", sa.Float, nullable=True))
        batch.add_column(sa.Column("acr", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("amr", sa.String(64), nullable=False, server_default=""))
        batch.create_index("ix_sessions_sso_session_id", ["sso_session_id"])
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("backchannel_logout_uri", sa.String(2000), nullable=False, server_default="")
        )
    # The password grant only for confidential clients that enable it (and Keycloak's
    # admin-cli): public clients registered before took it.
    op.execute(
        "UPDATE clients SET direct_grants = FALSE "
        "WHERE secret_hash IS NULL AND client_id <> 'admin-cli'"
    )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("backchannel_logout_uri")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_sso_session_id")
        batch.drop_column("amr")
        batch.drop_column("acr")
        batch.drop_column("auth_time")
        batch.drop_column("sso_session_id")
    op.drop_table("sso_sessions")
