"""Platform tables and the documents service's tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from lgsp.db import downgrade_platform_tables, upgrade_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    upgrade_platform_tables()
    op.create_table(
        "documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("direction", sa.SmallInteger, nullable=False),
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("type_code", sa.String(16), nullable=False),
        sa.Column("book", sa.String(16)),
        sa.Column("book_year", sa.Integer),
        sa.Column("book_number", sa.Integer),
        sa.Column("number_notation", sa.String(100), nullable=False, server_default=""),
        sa.Column("sender_agency_code", sa.String(35), nullable=False, server_default=""),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("confidentiality", sa.SmallInteger, nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("electronic", sa.Boolean, nullable=False),
        sa.Column("digitally_signed", sa.Boolean, nullable=False),
        sa.Column("promulgation_date", sa.Date),
        sa.Column("arrival_time", TZ),
        sa.Column("due_date", sa.Date),
        sa.Column("complete_time", TZ),
        sa.Column("handler_user_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("request_key", sa.String(128)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint(
            "agency_code", "book", "book_year", "book_number", name="uq_documents_book_entry"
        ),
        sa.UniqueConstraint("agency_code", "request_key", name="uq_documents_request"),
    )
    op.create_index("ix_documents_agency_created", "documents", ["agency_code", "created_at"])
    op.create_index("ix_documents_notation", "documents", ["agency_code", "number_notation"])
    op.create_index("ix_documents_sender", "documents", ["sender_agency_code", "number_notation"])
    op.create_table(
        "document_versions",
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("document_id", "version", name="pk_document_versions"),
    )
    op.create_table(
        "document_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_status", sa.String(40), nullable=False),
        sa.Column("to_status", sa.String(40), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_document_history_document_id", "document_history", ["document_id"])
    op.create_table(
        "directive_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("directing_agency_code", sa.String(35), nullable=False),
        sa.Column("assignee_agency_code", sa.String(35), nullable=False),
        sa.Column("assignee_user_id", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_directive_tasks_document_id", "directive_tasks", ["document_id"])
    op.create_index(
        "ix_directive_tasks_assignee_agency_code", "directive_tasks", ["assignee_agency_code"]
    )
    op.create_index("ix_directive_tasks_assignee_user_id", "directive_tasks", ["assignee_user_id"])
    op.create_table(
        "number_books",
        sa.Column("agency_code", sa.String(35), nullable=False),
        sa.Column("book", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("last_number", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("agency_code", "book", "year", name="pk_number_books"),
    )


def downgrade() -> None:
    op.drop_table("number_books")
    op.drop_table("directive_tasks")
    op.drop_table("document_history")
    op.drop_table("document_versions")
    op.drop_table("documents")
    downgrade_platform_tables()
