"""The mail service running for a test: ServiceRuntime with the plugin, a stand-in token
issuer for gRPC, a static agency tree, the SMTP and IMAP servers on free ports, and
officials added the way identity's events add them (MailApp.on_user in a unit of work)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

from lgsp import db, events
from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.identity.v1 import identity_pb2
from lgsp.api.mail.v1 import mail_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.config import load_settings
from lgsp.grpc.client import channel
from services.mail.plugin import PLUGIN
from services.mail.service_layer.mail import MailApp
from tests.support import free_port
from tests.support.issuer import FakeIssuer

ROOT = Path(__file__).resolve().parents[3]

PROVINCE, JUSTICE, JUSTICE_UNIT, HEALTH = (
    "000.00.00.H27",
    "000.00.12.H27",
    "000.02.12.H27",
    "000.00.17.H27",
)
AGENCIES = AgencyDirectory(
    [
        Agency(
            PROVINCE,
            "Ủy ban nhân dân tỉnh Hà Tĩnh",
            "UBND",
            "",
            "Hà Tĩnh",
            mail_domain="hatinh.gov.vn",
        ),
        Agency(JUSTICE, "Sở Tư pháp", "STP", PROVINCE, "Hà Tĩnh", mail_domain="stp.hatinh.gov.vn"),
        Agency(JUSTICE_UNIT, "Phòng Hành chính tư pháp", "HCTP", JUSTICE, "Hà Tĩnh"),
        Agency(HEALTH, "Sở Y tế", "SYT", PROVINCE, "Hà Tĩnh", mail_domain="syt.hatinh.gov.vn"),
    ]
)


class Passwords:
    """Identity's answer to a password grant, for the tests that are not about identity
    (test_identity.py checks SMTP AUTH against the real identity service)."""

    def __init__(self) -> None:
        self.users: dict[str, tuple[str, str]] = {}  # username -> (password, user id)
        self.down = False
        self.calls = 0

    async def check(self, username: str, password: str) -> str | None:
        from lgsp.grpc.errors import Unavailable

        self.calls += 1
        if self.down:
            raise Unavailable("identity down")
        found = self.users.get(username)
        return found[1] if found and found[0] == password else None


@dataclass
class MailEnv:
    runtime: ServiceRuntime
    issuer: FakeIssuer
    passwords: Passwords
    ch: grpc.aio.Channel
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def app(self) -> MailApp:
        return self.runtime.app

    def add_official(
        self,
        user_id: str,
        name: str,
        agency: str,
        *,
        password: str = "Mat-khau-2026!",
        roles: tuple[str, ...] = ("specialist",),
    ) -> str:
        """An official as identity's UserCreated brings them; their address."""
        username = f"{user_id}.test"
        user = identity_pb2.User(
            id=user_id,
            username=username,
            display_name=name,
            agency_code=agency,
            status=identity_pb2.USER_STATUS_ACTIVE,
            role_grants=[
                identity_pb2.RoleGrant(
                    role=identity_pb2.Role.Value(f"ROLE_{r.upper()}"), agency_code=agency
                )
                for r in roles
            ],
        )
        with self.app.uow() as uow:
            mb = self.app.on_user(uow, user)
            uow.commit()
        self.passwords.users[username] = (password, user_id)
        return mb.address

    def md(
        self, user_id: str, agency: str = JUSTICE, roles: tuple[str, ...] = ("specialist",)
    ) -> Any:
        token = self.issuer.token(
            sub=user_id,
            preferred_username=f"{user_id}.test",
            realm_access={"roles": list(roles)},
            agency_code=agency,
            agency_roles={agency: list(roles)},
        )
        return (("authorization", f"Bearer {token}"),)

    def stub(self) -> mail_pb2_grpc.MailServiceStub:
        return mail_pb2_grpc.MailServiceStub(self.ch)

    def rows(self, table: str, where: str = "1=1") -> int:
        with self.runtime.engine.connect() as conn:
            return int(
                conn.execute(sa.text(f"select count(*) from {table} where {where}")).scalar_one()
            )

    def events(self) -> list[tuple[str, str]]:
        with self.runtime.engine.connect() as conn:
            rows = list(conn.execute(sa.select(db.outbox_table).order_by(db.outbox_table.c.id)))
        return [(events.decode(r.value).type.rsplit(".", 1)[1], r.key) for r in rows]


@asynccontextmanager
async def mail_env(
    tmp_path: Path,
    *,
    smtp_ports: tuple[int, int] = (0, 0),
    options: dict[str, Any] | None = None,
    **env: str,
) -> AsyncIterator[MailEnv]:
    """`smtp_ports` (submission, inbound): 0 = any free port, learnt from `MailEnv.ports`;
    `options` go to the plugin's wire_service beside the test's own."""
    issuer = FakeIssuer()
    await issuer.start()
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_MAIL_SMTP_HOSTNAME": "mail.test", **env}
    )
    authn = JwtAuthenticator(issuer.issuer)
    passwords = Passwords()
    ports: dict[str, int] = {}
    listening = asyncio.Event()

    def on_listening(kind: str, port: int) -> None:
        ports[kind] = port
        if {"submission", "inbound", "imap", "imaps"} <= set(ports):
            listening.set()

    plugin = PLUGIN.with_options(
        agencies=AGENCIES,
        authenticator=authn,
        passwords=passwords,
        smtp_ports=smtp_ports,
        on_smtp_listening=on_listening,
        imap_ports=(0, 0),
        on_imap_listening=on_listening,
        **(options or {}),
    )
    runtime = ServiceRuntime(plugin, settings, port=0)
    await runtime.start()
    await asyncio.wait_for(listening.wait(), 10)
    ch = channel(runtime.server.address, service_name="mail-test")
    try:
        yield MailEnv(runtime, issuer, passwords, ch, ports)
    finally:
        await ch.close()
        await runtime.stop(0)
        await authn.aclose()
        await issuer.stop()


def client_tls() -> ssl.SSLContext:
    """What a mail client does with the self-signed certificate of a pilot: trust it
    explicitly (here: no verification, the test is about the protocol)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def start_process(
    data: Path, inbound: int, faults: str = "", output: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`python -m services.mail` on the data directory `data`, once its inbound port answers
    (other ports free ones; no identity: its calls go to ports nothing listens on)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LGSP_PLATFORM_DATA_DIR": str(data),
        "LGSP_MAIL_GRPC_PORT": str(free_port()),
        "LGSP_MAIL_SMTP_SUBMISSION_PORT": str(free_port()),
        "LGSP_MAIL_SMTP_INBOUND_PORT": str(inbound),
        "LGSP_MAIL_IMAP_PORT": str(free_port()),
        "LGSP_MAIL_IMAPS_PORT": str(free_port()),
        # No identity here: keep the service's calls off any identity left running.
        "LGSP_IDENTITY_GRPC_PORT": str(free_port()),
        "LGSP_IDENTITY_HTTP_PORT": str(free_port()),
        "LGSP_FAULTS": faults,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.mail"], cwd=ROOT, env=env, stdout=output, stderr=output
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", inbound), 0.2).close()
            return proc
        except OSError:
            assert proc.poll() is None, "the mail service exited at start"
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the mail service did not listen")
