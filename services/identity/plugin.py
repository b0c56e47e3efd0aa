"""Identity as a platform plugin: single sign-on (the built-in OpenID Connect provider on
Keycloak's paths), the agency tree, users, roles and client systems (docs/identity.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgsp.plugins import Plugin, Wiring
from services.identity.settings import IdentitySettings


def wire(runtime: Any, **options: Any) -> Wiring:
    from services.identity.bootstrap import wire_service

    return wire_service(runtime, **options)


def register_cli(sub: Any) -> None:
    from services.identity import cli

    cli.register(sub)


PLUGIN = Plugin(
    name="identity",
    description="identity / SSO",
    settings=IdentitySettings,
    wire=wire,
    migrations=Path(__file__).parent / "migrations",
    cli=register_cli,
    routes=("identity",),
    order=20,
)
