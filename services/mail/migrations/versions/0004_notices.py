"""Notices: the agency mailboxes' clerks (văn thư by role), the owner's daily-digest choice,
the directive tasks followed for reminders, the documents followed for their notices, the
notices held for a digest and the digests sent per day.

Revision ID: 0004_notices
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_notices"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as t:
        t.add_column(
            sa.Column("daily_digest", sa.Boolean, nullable=False, server_default=sa.false())
        )
        t.add_column(sa.Column("clerk_user_ids", sa.JSON, nullable=False, server_default="[]"))
    op.create_table(
        "notice_tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("assignee_agency_code", sa.String(35), nullable=False),
        sa.Column("assignee_user_id", sa.String(64), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("nearing_sent", sa.Boolean, nullable=False),
        sa.Column("overdue_sent", sa.Boolean, nullable=False),
    )
    op.create_index("ix_notice_tasks_open_due", "notice_tasks", ["open", "due_date"])
    op.create_table(
        "notice_documents",
        sa.Column("document_id", sa.String(64), primary_key=True),
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("number_notation", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(1000), nullable=False),
        sa.Column("sender_agency_name", sa.String(300), nullable=False),
        sa.Column("confidential", sa.Boolean, nullable=False),
    )
    op.create_table(
        "digest_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mailbox_address", sa.String(254), nullable=False, index=True),
        sa.Column("subject", sa.String(1000), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("related_document_id", sa.String(64), nullable=False),
        sa.Column("related_receipt_code", sa.String(60), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "digests_sent",
        sa.Column("mailbox_address", sa.String(254), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("notice_count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("digests_sent")
    op.drop_table("digest_items")
    op.drop_table("notice_documents")
    op.drop_index("ix_notice_tasks_open_due", table_name="notice_tasks")
    op.drop_table("notice_tasks")
    with op.batch_alter_table("mailboxes") as t:
        t.drop_column("clerk_user_ids")
        t.drop_column("daily_digest")
