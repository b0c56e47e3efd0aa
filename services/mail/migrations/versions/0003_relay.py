"""The relay of the outgoing queue (claims with a lease, the last error) and the SPF/DKIM
results recorded on messages that came in (docs/mail.md, "Relay and bounces", "DKIM and SPF").

Revision ID: 0003_relay
Revises: 0002_imap, 0004_notices

Also the merge point of main's two heads (0002_imap and 0004_notices both follow 0001), so
the mail database upgrades in one line; the brief's "down_revision = 0001" is re-chained at
merge in any case.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_relay"
down_revision = ("0002_imap", "0004_notices")
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("outgoing") as t:
        # The relay worker holding the row and until when (a worker that died mid-send loses
        # it when the lease runs out: at-least-once, never twice at the same time).
        t.add_column(sa.Column("claim_token", sa.String(64), nullable=True))
        t.add_column(sa.Column("lease_until", TZ, nullable=True))
        t.add_column(sa.Column("last_error", sa.String(1000), nullable=False, server_default=""))
    with op.batch_alter_table("messages") as t:
        # RFC 8601 result words of the checks at receipt ("" = not checked: local mail).
        t.add_column(sa.Column("auth_spf", sa.String(20), nullable=False, server_default=""))
        t.add_column(sa.Column("auth_dkim", sa.String(20), nullable=False, server_default=""))
        t.add_column(sa.Column("auth_summary", sa.String(1000), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("messages") as t:
        t.drop_column("auth_summary")
        t.drop_column("auth_dkim")
        t.drop_column("auth_spf")
    with op.batch_alter_table("outgoing") as t:
        t.drop_column("last_error")
        t.drop_column("lease_until")
        t.drop_column("claim_token")
