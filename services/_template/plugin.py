"""The template service as a platform plugin: what `lgsp up`, `lgsp run template`, the
settings, the gateway and the `lgsp` command read. Keep this module light: discovery imports
it in every process; `wire` and `cli` are imported when used."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services._template.settings import TemplateSettings

PLUGIN = Plugin(
    name="template",
    description="agency notices",
    settings=TemplateSettings,
    wire="services._template.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    cli="services._template.cli:register",
    # The gateway routes calls of lgsp.api.template.v1 to this service's gRPC port.
    routes=("template",),
    order=50,
)
