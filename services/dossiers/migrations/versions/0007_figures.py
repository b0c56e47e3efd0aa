"""Dossiers: the officials' search columns (folded applicant name, PIN, enterprise code) and
indexes, and the summary table of the figures (per grain, day, agency, procedure).

The search columns of dossiers already stored are filled here; the summary starts empty and
`lgsp dossiers stats --rebuild` counts them (it needs the province's calendar, a setting).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from lgsp.textfold import fold

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTERS = (
    "received", "received_online", "processed", "processed_early", "processed_on_time",
    "processed_late", "processing_days", "closed_unprocessed", "fee_paid", "paid_online",
    "rated", "rating_sum", "rating_top",
)  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("dossiers") as t:
        t.add_column(sa.Column("applicant_key", sa.String(1100), nullable=False, server_default=""))
        t.add_column(
            sa.Column("applicant_number", sa.String(20), nullable=False, server_default="")
        )
        t.add_column(
            sa.Column("applicant_org_code", sa.String(20), nullable=False, server_default="")
        )
    _fill_search_columns()
    op.create_index("ix_dossiers_agency_submit", "dossiers", ["agency_code", "submit_time", "id"])
    op.create_index("ix_dossiers_submit", "dossiers", ["submit_time", "id"])
    op.create_index("ix_dossiers_applicant_number", "dossiers", ["applicant_number"])
    op.create_index("ix_dossiers_applicant_org_code", "dossiers", ["applicant_org_code"])
    op.create_index(
        "ix_dossiers_open",
        "dossiers",
        ["status", "agency_code", "procedure_code", "due_date", "accept_time"],
    )
    op.create_index(
        "ix_dossiers_receipt_pattern",
        "dossiers",
        ["receipt_code"],
        postgresql_ops={"receipt_code": "varchar_pattern_ops"},
    )
    op.create_table(
        "dossier_figures",
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("agency_code", sa.String(35), primary_key=True),
        sa.Column("procedure_code", sa.String(40), primary_key=True),
        sa.Column("month", sa.Date, nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in COUNTERS),
    )
    op.create_index("ix_dossier_figures_agency", "dossier_figures", ["agency_code", "grain", "day"])


def downgrade() -> None:
    op.drop_table("dossier_figures")
    for name in (
        "ix_dossiers_receipt_pattern",
        "ix_dossiers_open",
        "ix_dossiers_applicant_org_code",
        "ix_dossiers_applicant_number",
        "ix_dossiers_submit",
        "ix_dossiers_agency_submit",
    ):
        op.drop_index(name, "dossiers")
    with op.batch_alter_table("dossiers") as t:
        for column in ("applicant_org_code", "applicant_number", "applicant_key"):
            t.drop_column(column)


def _fill_search_columns() -> None:
    # As adapters/repository.search_columns writes them (written out: revisions are frozen).
    t = sa.table(
        "dossiers",
        sa.column("id", sa.String),
        sa.column("applicant", sa.JSON),
        sa.column("applicant_key", sa.String),
        sa.column("applicant_number", sa.String),
        sa.column("applicant_org_code", sa.String),
    )
    bind = op.get_bind()
    for row in list(bind.execute(sa.select(t.c.id, t.c.applicant))):
        a = row.applicant or {}
        names = [" ".join(fold(a.get(k) or "").split()) for k in ("full_name", "organization_name")]
        bind.execute(
            sa.update(t)
            .where(t.c.id == row.id)
            .values(
                applicant_key=(" " + " ".join(n for n in names if n))[:1100],
                applicant_number=(a.get("identity_number") or "").strip()[:20],
                applicant_org_code=(a.get("organization_code") or "").replace("-", "").strip()[:20],
            )
        )
