"""Issue 13 item 3: X-Forwarded-For / Forwarded are believed only from the proxies named in
identity.trusted_proxies (none by default). A client on loopback forging them does not escape
the per-address throttle, nor writes its forged addresses into the audit log or LoginFailed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from lgsp import events
from lgsp.api.identity.v1 import events_pb2 as ev
from lgsp.config import ConfigError, load_settings
from lgsp.db import outbox_table
from services.identity.adapters import tables as t
from services.identity.bootstrap import Identity
from tests.services.identity.conftest import start_identity


def public_client(ident: Identity) -> None:
    """Sign-ins come through admin-cli: the one public client that takes passwords (in every
    realm, as Keycloak's); other public clients are refused before any password is tried."""
    assert ident.clients.row("lgsp", "admin-cli") is not None


async def spray(base: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    out = []
    async with httpx.AsyncClient() as http:
        for i in range(n):
            r = await http.post(
                f"{base}/realms/lgsp/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": f"khong.ton.tai{i}",
                    "password": "Doan-Mo-123",
                },
                headers={
                    "X-Forwarded-For": f"203.0.113.{i}",
                    "Forwarded": f"for=198.51.100.{i}",
                    "X-Real-IP": f"192.0.2.{i}",
                    **(headers or {}),
                },
            )
            out.append(r.status_code)
    return out


def recorded_addresses(ident: Identity) -> tuple[set[str], set[str]]:
    """(audit log addresses of sign-ins, LoginFailed.remote_ip)."""
    with ident.storage.session() as s:
        audit = set(
            s.execute(sa.select(t.audit_log.c.remote_ip).where(t.audit_log.c.action == "login"))
            .scalars()
            .all()
        )
        values = s.execute(sa.select(outbox_table.c.value)).scalars().all()
    published = set()
    for value in values:
        payload = events.payload_of(events.decode(value))
        if isinstance(payload, ev.LoginFailed):
            published.add(payload.remote_ip)
    return audit, published


async def test_forged_forwarded_headers_from_loopback_are_ignored(tmp_path: Path) -> None:
    runtime, ident, base = await start_identity(tmp_path)
    try:
        public_client(ident)
        # The per-address limit is 20 failures: a forged address per request does not reset it.
        codes = await spray(base, 22)
        assert codes[:20] == [401] * 20 and codes[20:] == [429, 429]
        audit, published = recorded_addresses(ident)
        assert audit == {"127.0.0.1"} and published == {"127.0.0.1"}
    finally:
        await runtime.stop(grace=1)


async def test_a_trusted_proxys_forwarded_for_is_believed(tmp_path: Path) -> None:
    runtime, ident, base = await start_identity(tmp_path, trusted_proxies="127.0.0.0/8, ::1")
    try:
        public_client(ident)
        codes = await spray(base, 22)
        assert codes == [401] * 22  # 22 different clients behind the proxy
        audit, published = recorded_addresses(ident)
        assert audit == published == {f"203.0.113.{i}" for i in range(22)}
    finally:
        await runtime.stop(grace=1)


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.hatinh.gov.vn", "*", "10.0.0.1,nope"])
def test_trusted_proxies_must_be_addresses_or_networks(bad: str) -> None:
    with pytest.raises(
        ConfigError, match=r"TRUSTED_PROXIES: .* is not an IP address or CIDR network"
    ):
        load_settings(env={"LGSP_IDENTITY_TRUSTED_PROXIES": bad})
    s = load_settings(env={"LGSP_IDENTITY_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16,::1"})
    assert s.identity.proxies() == ["10.0.0.5", "10.1.0.0/16", "::1"]
    assert load_settings(env={}).identity.proxies() == []
