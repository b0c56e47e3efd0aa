"""A real SMTP server (aiosmtpd's Controller, its own thread, a free port) standing in for
the province's smarthost in relay tests: it records what it accepts (and whose AUTH it
took, when `login` is given), and answers what a test asks for a recipient: a 4xx, a 5xx,
or a dropped connection. Not started (or stopped), it refuses connections."""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    # recipient → "450 4.2.0 Try later" / "550 5.1.1 No such user" / "drop"
    answers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tls_seen: list[bool] = field(default_factory=list)
    delay_s: float = 0.0  # a slow server: each DATA answered this much later
    # recipient → the answer at the end of DATA instead of 250 (e.g. "552 5.3.4 Too big")
    data_answers: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        answer = self.answers.get(address.lower(), "")
        if answer == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 gone"
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in self.data_answers:
                return self.data_answers[rcpt.lower()]
        with self.lock:
            self.received.append(
                Received(
                    str(envelope.mail_from or ""),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                )
            )
            self.tls_seen.append(server._tls_protocol is not None)
        return "250 2.0.0 Queued"


class Smarthost:
    """`with Smarthost() as relay:` … `relay.address` ("127.0.0.1:port") for [mail]
    smarthost. `tls` = (cert, key) offers STARTTLS with that pair."""

    def __init__(
        self, tls: tuple[Path, Path] | None = None, login: tuple[str, str] | None = None
    ) -> None:
        self.handler = Handler()
        self.logins: list[str] = []
        self.port = free_port()
        context = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="smarthost.test",
            tls_context=context,
            decode_data=False,
            **({"authenticator": self._check, "auth_required": True} if login else {}),
        )
        self.login = login

    def _check(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.login == (
            data.login.decode(),
            data.password.decode(),
        )
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> Smarthost:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
