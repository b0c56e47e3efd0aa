"""The documents walkthrough (docs/documents.md and tools/documents_walkthrough.sh) works as
written: its token step uses a client identity lets take officials' passwords."""

from __future__ import annotations

import re
from pathlib import Path

from services.identity.domain.access import ADMIN_CLI
from services.identity.seed import CLIENTS

ROOT = Path(__file__).resolve().parents[3]
WALKTHROUGH = [ROOT / "docs" / "documents.md", ROOT / "tools" / "documents_walkthrough.sh"]


def test_the_walkthrough_signs_in_with_a_client_that_takes_the_password_grant() -> None:
    # Identity refuses the password grant to public clients (no secret), except admin-cli
    # (docs/identity.md, "The password grant"); the seeded public ones have no roles list.
    public = {client_id for client_id, _, _, roles in CLIENTS if roles is None}
    for path in WALKTHROUGH:
        text = path.read_text(encoding="utf-8")
        assert "grant_type=password" in text, path
        used = set(re.findall(r"client_id=([\w.-]+)", text))
        assert used, path
        assert used == {ADMIN_CLI}, f"{path.name} signs in with {sorted(used & public)}"
