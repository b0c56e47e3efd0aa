"""Identity as a platform plugin: single sign-on (the built-in OpenID Connect provider on
Keycloak's paths), the agency tree, users, roles and client systems (docs/identity.md)."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.identity.settings import IdentitySettings

PLUGIN = Plugin(
    name="identity",
    description="identity / SSO",
    settings=IdentitySettings,
    wire="services.identity.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    backup="services.identity.backup:items",
    cli="services.identity.cli:register",
    routes=("identity",),
    order=20,
)
