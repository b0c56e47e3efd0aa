"""What `lgsp backup` keeps of the gateway besides its database: the message log's signing key
(without it, later seals could not be made by the same key)."""

from __future__ import annotations

from pathlib import Path

from lgsp.backup import Item
from lgsp.config import Settings
from services.gateway.msglog import KEY_FILE


def items(settings: Settings) -> list[Item]:
    return [Item(KEY_FILE, Path(settings.platform.data_dir) / KEY_FILE, "file")]
