"""Search as a platform plugin: the document archive's full-text index, kept current from
documents' events, searched under each official's reading rights (docs/search.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgsp.plugins import Plugin, Wiring
from services.search.settings import SearchSettings


def wire(runtime: Any, **options: Any) -> Wiring:
    from services.search.bootstrap import wire_service

    return wire_service(runtime, **options)


def register_cli(sub: Any) -> None:
    from services.search import cli

    cli.register(sub)


PLUGIN = Plugin(
    name="search",
    description="document search",
    settings=SearchSettings,
    wire=wire,
    migrations=Path(__file__).parent / "migrations",
    cli=register_cli,
    routes=("search",),
    order=50,
)
