"""The mail service as a platform plugin: what `lgsp up`, `lgsp run mail`, the settings, the
gateway and the `lgsp` command read. Keep this module light: discovery imports it in every
process; `wire` and `cli` are imported when used."""

from __future__ import annotations

from pathlib import Path

from lgsp.plugins import Plugin
from services.mail.settings import MailSettings

PLUGIN = Plugin(
    name="mail",
    description="official mail: mailboxes, SMTP, the mail store",
    settings=MailSettings,
    wire="services.mail.bootstrap:wire_service",
    migrations=Path(__file__).parent / "migrations",
    backup="services.mail.backup:items",
    cli="services.mail.cli:register",
    # The gateway routes calls of lgsp.api.mail.v1 to this service's gRPC port.
    routes=("mail",),
    order=60,  # after identity, whose users it follows
)
