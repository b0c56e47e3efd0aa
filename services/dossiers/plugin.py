"""The dossiers service as a platform plugin: what `lgsp up`, `lgsp run dossiers`, the
settings, the gateway and the `lgsp` command read. Keep this module light: discovery imports
it in every process; `wire` and `cli` are imported when used."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.dossiers.settings import DossiersSettings

PLUGIN = Plugin(
    name="dossiers",
    description="one-stop desk: procedures and dossiers",
    settings=DossiersSettings,
    wire="services.dossiers.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    cli="services.dossiers.cli:register",
    # The gateway routes calls of lgsp.api.dossiers.v1 to this service's gRPC port.
    routes=("dossiers",),
    order=50,
)
