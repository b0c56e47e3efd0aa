"""Search as a platform plugin: the document archive's full-text index, kept current from
documents' events, searched under each official's reading rights (docs/search.md)."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.search.settings import SearchSettings

PLUGIN = Plugin(
    name="search",
    description="document search",
    settings=SearchSettings,
    wire="services.search.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    backup="services.search.backup:items",
    cli="services.search.cli:register",
    routes=("search",),
    order=50,
)
