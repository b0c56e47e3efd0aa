"""What `lgsp backup` keeps of documents besides its database: the development CA (its key,
the certificates it issued and their revocations)."""

from __future__ import annotations

from lgsp.backup import Item
from lgsp.config import Settings


def items(settings: Settings) -> list[Item]:
    return [Item("ca", settings.data_dir / "ca", "tree")]
