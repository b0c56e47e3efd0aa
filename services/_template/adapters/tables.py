"""The template service's tables (created by migrations/versions/0001_template.py; a change
here needs a new revision there)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("agency_code", sa.String(35), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("author_id", sa.String(64), nullable=False),
    sa.Column("posted_time", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_notices_agency_posted", "agency_code", "posted_time"),
)
