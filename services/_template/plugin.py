"""The template service as a platform plugin: what `lgsp up`, `lgsp run template`, the
settings, the gateway and the `lgsp` command read. Keep this module light: discovery imports
it in every process, so the heavy modules are imported inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgsp.plugins import Plugin, Wiring
from services._template.settings import TemplateSettings


def wire(runtime: Any, **options: Any) -> Wiring:
    from services._template.bootstrap import wire_service

    return wire_service(runtime, **options)


def register_cli(sub: Any) -> None:
    from services._template import cli

    cli.register(sub)


PLUGIN = Plugin(
    name="template",
    description="agency notices",
    settings=TemplateSettings,
    wire=wire,
    migrations=Path(__file__).parent / "migrations",
    cli=register_cli,
    # The gateway routes calls of lgsp.api.template.v1 to this service's gRPC port.
    routes=("template",),
    order=50,
)
