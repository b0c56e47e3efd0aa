"""What `lgsp backup` keeps of identity besides its database: the master realm's generated
admin password and the demo secrets, when they were written to the data directory."""

from __future__ import annotations

from pathlib import Path

from lgsp.backup import Item
from lgsp.config import Settings

FILES = ("identity-admin-password", "identity-demo.json")


def items(settings: Settings) -> list[Item]:
    return [Item(name, Path(settings.platform.data_dir) / name, "file") for name in FILES]
