"""The gateway as a platform plugin: pass-through to the services' APIs under member rights
and limits, with the signed message log (see docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgsp.plugins import Plugin, Wiring
from services.gateway.settings import GatewaySettings


def wire(runtime: Any, **options: Any) -> Wiring:
    from services.gateway.app import wire

    return wire(runtime, **options)


def register_cli(sub: Any) -> None:
    from services.gateway import log_cli, member_cli

    log_cli.register(sub)
    member_cli.register(sub)


PLUGIN = Plugin(
    name="gateway",
    description="LGSP gateway",
    settings=GatewaySettings,
    wire=wire,
    migrations=Path(__file__).parent / "migrations",
    cli=register_cli,
    order=10,
)
