"""Catalogue: the columns ListProcedures filters on (field name, online level, folded code and
name) and the procedure ↔ agency table, filled from the procedures already stored.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from lgsp.textfold import fold

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("procedures") as t:
        t.add_column(sa.Column("field_name", sa.String(200), nullable=False, server_default=""))
        t.add_column(sa.Column("online_level", sa.Integer, nullable=False, server_default="0"))
        t.add_column(sa.Column("search_text", sa.String(1100), nullable=False, server_default=""))
    agencies = op.create_table(
        "procedure_agencies",
        sa.Column("procedure_code", sa.String(40), primary_key=True),
        sa.Column("agency_code", sa.String(35), primary_key=True),
    )
    op.create_index(
        "ix_procedure_agencies_agency", "procedure_agencies", ["agency_code", "procedure_code"]
    )
    procedures = sa.table(
        "procedures",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("data", sa.JSON),
        sa.column("field_name", sa.String),
        sa.column("online_level", sa.Integer),
        sa.column("search_text", sa.String),
    )
    conn = op.get_bind()
    for code, name, data in conn.execute(
        sa.select(procedures.c.code, procedures.c.name, procedures.c.data)
    ).all():
        conn.execute(
            procedures.update()
            .where(procedures.c.code == code)
            .values(
                field_name=data["field"]["name"],
                online_level=int(data.get("online_level", 0)),
                search_text=fold(f"{code} {name}"),
            )
        )
        for agency in dict.fromkeys(data["agency_codes"]):
            conn.execute(agencies.insert().values(procedure_code=code, agency_code=agency))


def downgrade() -> None:
    op.drop_index("ix_procedure_agencies_agency", "procedure_agencies")
    op.drop_table("procedure_agencies")
    with op.batch_alter_table("procedures") as t:
        for column in ("search_text", "online_level", "field_name"):
            t.drop_column(column)
