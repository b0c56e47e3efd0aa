"""Documents as a platform plugin: official documents (Nghị định 30/2020), their books and
numbers, signatures, and the edXML exchange inside the province and over the national axis
(docs/documents.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgsp.plugins import Plugin, Wiring
from services.documents.settings import DocumentsSettings


def wire(runtime: Any, **options: Any) -> Wiring:
    from services.documents.bootstrap import wire_service

    return wire_service(runtime, **options)


def register_cli(sub: Any) -> None:
    from services.documents import cli

    cli.register(sub)


PLUGIN = Plugin(
    name="documents",
    description="documents",
    settings=DocumentsSettings,
    wire=wire,
    migrations=Path(__file__).parent / "migrations",
    cli=register_cli,
    routes=("documents",),
    order=30,
)
