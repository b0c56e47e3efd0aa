"""An official's mail-client login, the same for SMTP AUTH and IMAP LOGIN/AUTHENTICATE: the
login is their mail address or identity username, the password is checked by identity's
password grant (`Passwords`), so identity's lockout, throttle and audit apply; and failures
are counted per client address here, across both protocols, before identity is asked.

Why count here: identity sees every mail login coming from this service's own address, so
its per-address throttle (20 per 5 minutes) must not be reached by one guesser, or every
official's mail client would be throttled with them. Identity's per-account lockout still
applies.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from lgsp.grpc.errors import Unavailable
from lgsp.ratelimit import FailureWindow
from services.mail.domain.errors import AppPasswordRequired
from services.mail.service_layer.mail import MailApp

log = logging.getLogger("services.mail.login")

# Per client address, over SMTP and IMAP together (below identity's 20 per 5 minutes).
FAILURES_PER_ADDRESS = 10
FAILURE_WINDOW_S = 300.0


class Passwords(Protocol):
    async def check(self, username: str, password: str) -> str | None: ...


class Outcome(enum.Enum):
    OK = "ok"
    REFUSED = "refused"  # wrong login or password (or locked, disabled: identity says alike)
    BLOCKED = "blocked"  # too many failures from this client address
    UNAVAILABLE = "unavailable"  # identity cannot be asked: try later
    # The right password of an account with a second factor: the client needs an app
    # password. Not a failure: a client retrying the old password must not block its address.
    APP_PASSWORD_REQUIRED = "app_password_required"


@dataclass(frozen=True)
class Login:
    outcome: Outcome
    user_id: str = ""


class MailLogins:
    """One per mail service: SMTP and IMAP share it (and its failure window)."""

    def __init__(self, app: MailApp, passwords: Passwords) -> None:
        self.app = app
        self.passwords = passwords
        self.failures = FailureWindow(FAILURES_PER_ADDRESS, FAILURE_WINDOW_S)

    async def check(self, login: str, password: str, peer: str, protocol: str) -> Login:
        if self.failures.blocked(peer):
            log.warning("%s login from %s refused: too many failures", protocol, peer)
            return Login(Outcome.BLOCKED)
        login = login.strip()
        try:
            username = await asyncio.to_thread(self.app.login_name, login)
            user_id = await self.passwords.check(username, password) if username else None
        except Unavailable as e:
            log.warning("%s login: identity unavailable: %s", protocol, e.message)
            return Login(Outcome.UNAVAILABLE)
        except AppPasswordRequired:
            log.info("%s login of %r from %s: needs an app password", protocol, login[:100], peer)
            return Login(Outcome.APP_PASSWORD_REQUIRED)
        if user_id is None:
            self.failures.failed(peer)
            log.info("%s login refused for %r from %s", protocol, login[:100], peer)
            return Login(Outcome.REFUSED)
        return Login(Outcome.OK, user_id)
