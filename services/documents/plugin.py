"""Documents as a platform plugin: official documents (Nghị định 30/2020), their books and
numbers, signatures, and the edXML exchange inside the province and over the national axis
(docs/documents.md)."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.documents.settings import DocumentsSettings

PLUGIN = Plugin(
    name="documents",
    description="documents",
    settings=DocumentsSettings,
    wire="services.documents.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    backup="services.documents.backup:items",
    cli="services.documents.cli:register",
    routes=("documents",),
    order=30,
)
