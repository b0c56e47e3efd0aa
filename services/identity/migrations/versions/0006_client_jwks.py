"""A client's public keys (a JWK Set) for private_key_jwt client authentication (RFC 7523,
OpenID Connect Core §9).

Revision ID: 0006_client_jwks
Revises: 0005_client_roles
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_client_jwks"
down_revision = "0005_client_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("jwks", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks")
