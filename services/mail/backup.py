"""What `lgsp backup` keeps of mail besides its database: the DKIM keys (the province has
published their public halves in DNS: a restore with new keys would fail every receiver's
check) and the STARTTLS/IMAPS certificate made at first start (officials' clients pinned it).
The S/MIME certificates live in the CA that documents' backup keeps."""

from __future__ import annotations

from lgsp.backup import Item
from lgsp.config import Settings


def items(settings: Settings) -> list[Item]:
    return [
        Item("mail-dkim", settings.data_dir / "mail-dkim", "tree"),
        Item("mail-tls", settings.data_dir / "mail-tls", "tree"),
    ]
