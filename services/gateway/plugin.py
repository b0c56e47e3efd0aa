"""The gateway as a platform plugin: pass-through to the services' APIs under member rights
and limits, with the signed message log (see docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.gateway.settings import GatewaySettings

PLUGIN = Plugin(
    name="gateway",
    description="LGSP gateway",
    settings=GatewaySettings,
    wire="services.gateway.app:wire",
    migrations=Path(__file__).parent / "migrations",
    backup="services.gateway.backup:items",
    cli=("services.gateway.log_cli:register", "services.gateway.member_cli:register"),
    order=10,
)
