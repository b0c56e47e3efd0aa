"""Mail's keys survive `lgsp backup` / `lgsp restore`: the DKIM key whose public half is in
DNS and the TLS certificate clients trusted come back the same, not made anew."""

from __future__ import annotations

from pathlib import Path

from lgsp.backup import backup, restore
from lgsp.config import load_settings
from services.mail.adapters.dkim_keys import dkim_dns_record
from services.mail.adapters.tls import ensure_self_signed


def test_dkim_keys_and_tls_certificate_round_trip(tmp_path: Path) -> None:
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "data")})
    record = dkim_dns_record(settings, "stp.hatinh.gov.vn")
    cert, _key = ensure_self_signed(settings.data_dir / "mail-tls", "mail.hatinh.gov.vn")
    manifest = backup(settings, tmp_path / "bk")
    items = manifest["items"]
    assert isinstance(items, list)
    names = {str(i["name"]) for i in items}
    assert {"mail/mail-dkim", "mail/mail-tls"} <= names

    restored = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "other")})
    restore(restored, tmp_path / "bk")
    assert dkim_dns_record(restored, "stp.hatinh.gov.vn") == record  # the same key, not a new one
    again = restored.data_dir / "mail-tls" / cert.name
    assert again.read_bytes() == cert.read_bytes()
    key = next((restored.data_dir / "mail-dkim").glob("*.key"))
    assert key.stat().st_mode & 0o077 == 0  # still private to its owner
