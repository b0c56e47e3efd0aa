"""The SMTP servers (aiosmtpd), one per port, on the service's event loop.

Submission (RFC 6409, [mail] smtp_submission_port): STARTTLS first, then AUTH PLAIN or LOGIN
checked by identity, then mail only from the addresses the official may send as. Local
recipients are delivered into the store, outside ones queued for the relay.

Inbound ([mail] smtp_inbound_port): mail from other servers, for local mailboxes only: no
AUTH, no relaying (554), no local senders (they submit). STARTTLS offered, not required.
SPF and DKIM are checked and recorded (an Authentication-Results header and the message's
columns), never enforced; a recipient that cannot take the message by the time it is stored
(disabled since RCPT) gets a DSN to the sender while the others get the message.

Replies (RFC 5321 / RFC 3463 enhanced codes):
    530 5.7.0   AUTH (submission) or STARTTLS first
    535 5.7.8   wrong credentials; 421 after three in one session; 454 identity unreachable
                or ten failures from one address in five minutes (SMTP and IMAP together)
    553 5.7.1   MAIL FROM an address not yours (submission) or a local one (inbound)
    550 5.1.1   RCPT to an unknown local mailbox; 550 5.2.1 to a disabled one
    452 4.2.2   mailbox full; 452 4.5.3 too many recipients
    554 5.7.1   relay refused (inbound to an outside domain)
    552         message over the size limit (SIZE parameter or DATA)
    550 5.7.1   a From header not yours (submission)
    250 2.0.0   stored durably (the transaction committed), only then
    451 4.3.0   anything else went wrong: nothing stored, the client tries again
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.mail.adapters.mail_auth import InboundChecks
from services.mail.domain.authresults import Authentication, header_value, strip_ours
from services.mail.domain.errors import (
    Conflict,
    InvalidField,
    NotFound,
    QuotaExceeded,
    TooComplex,
    TooLarge,
)
from services.mail.domain.message import Summary, parse_summary
from services.mail.entrypoints.logins import MailLogins, Outcome
from services.mail.service_layer.mail import MailApp

log = logging.getLogger("services.mail.smtp")


class _NoLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 sets its own deprecated `Session.login_data` after every AUTH and logs a
    warning each time: an operator would see one line per login saying nothing about us."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_NoLoginDataNotice())  # aiosmtpd's logger

MAX_AUTH_FAILURES = 3  # per session, then 421 and the connection is closed


class MailHandler:
    """aiosmtpd's handler for the inbound port; SubmissionHandler adds AUTH."""

    submission = False

    def __init__(self, app: MailApp, checks: InboundChecks | None = None) -> None:
        self.app = app
        self.checks = checks

    # --- envelope ---------------------------------------------------------------------------

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        address = address.lower()  # the null reverse-path stays "<>" (aiosmtpd needs it set)
        if self.submission:
            allowed = await asyncio.to_thread(self.app.sender_addresses, str(session.auth_data))
            if address not in allowed:
                return "553 5.7.1 Sender address is not yours"
            envelope.lgsp_senders = allowed  # type: ignore[attr-defined]  # for DATA's check
        elif address:
            local: bool = await asyncio.to_thread(self.app.is_local, address)
            if local:
                return "553 5.7.1 Local senders must authenticate on the submission port"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.app.rules.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            local = await asyncio.to_thread(self.app.check_recipient, address)
        except InvalidField:
            return "501 5.1.3 Bad recipient address syntax"
        except NotFound:
            return "550 5.1.1 No such mailbox"
        except Conflict:
            return "550 5.2.1 Mailbox disabled"
        except QuotaExceeded:
            return "452 4.2.2 Mailbox full"
        if local is None and not self.submission:
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address.lower())
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # Parsed once, off the event loop (the Received line added below changes nothing of
        # it); None leaves it to deliver, whose failure answers 451.
        try:
            summary = await asyncio.to_thread(_summary, raw)
        except TooComplex as e:  # permanent (RFC 3463 X.6.0): a retry would be the same
            log.info("SMTP refused from %s: %s", envelope.mail_from or "<>", e.message)
            return f"554 5.6.0 {e.message}"
        if self.submission:
            allowed: set[str] = getattr(envelope, "lgsp_senders", set())
            sender = summary.sender.address if summary else ""
            if not sender or sender not in allowed:
                return "550 5.7.1 The From header must be your own address"
        elif summary and summary.sender.address:
            # As MAIL FROM (handle_MAIL): mail shown as from an official comes through
            # submission, authenticated; from outside it is a forgery (RFC 7489's aim).
            if await asyncio.to_thread(self.app.is_local, summary.sender.address):
                log.info("SMTP inbound refused: From %s is local", summary.sender.address)
                return "550 5.7.1 From a local domain: local senders must authenticate"
        auth = None
        trace = _received(server, session, self.submission)
        if self.checks is not None:
            auth = await self._authenticate(server, session, envelope, raw)
            raw, forged = strip_ours(raw, self.checks.authserv_id)
            if forged:
                log.info("SMTP inbound: %d forged Authentication-Results removed", forged)
            # RFC 8601 §5: at the top, above this hop's Received.
            trace = f"Authentication-Results: {auth.summary}\r\n".encode() + trace
        raw = trace + raw
        try:
            done = await asyncio.to_thread(
                self.app.deliver,
                raw,
                _reverse_path(envelope),
                envelope.rcpt_tos,
                actor_id=str(session.auth_data or ""),
                strict=self.submission,
                partial=not self.submission,
                authentication=auth,
                summary=summary,
            )
        except TooLarge:
            return "552 5.3.4 Message too big"
        except QuotaExceeded as e:
            return f"552 5.2.2 {e.message}"
        except Conflict as e:
            return f"550 5.2.1 {e.message}"
        except Exception:
            log.exception("SMTP delivery failed; nothing stored")
            return "451 4.3.0 Temporary failure, try again"
        log.info(
            "SMTP %s from %s: %d bytes delivered to %d, queued for %d, bounced %d%s",
            "submission" if self.submission else "inbound",
            envelope.mail_from or "<>",
            len(raw),
            len(done.delivered),
            len(done.queued),
            len(done.bounced),
            f" (spf={auth.spf} dkim={auth.dkim})" if auth else "",
        )
        return "250 2.0.0 OK stored"

    async def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, raw: bytes
    ) -> Authentication:
        """SPF and DKIM within the checks' time budget (a thread left behind by a stuck
        resolver ends at its own DNS lifetime); past it, temperror."""
        assert self.checks is not None
        ip, helo, sender = _peer(server), session.host_name or "", _reverse_path(envelope)
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.checks.check, raw, ip, helo, sender),
                self.checks.budget_s + 1.0,
            )
        except TimeoutError:
            value = header_value(
                self.checks.authserv_id,
                spf="temperror",
                mail_from=sender,
                helo=helo,
                dkim="temperror",
                client_ip=ip,
            )
            return Authentication("temperror", "temperror", value)


class SubmissionHandler(MailHandler):
    """The submission port's handler: AUTH checked by identity through the logins shared
    with IMAP (aiosmtpd calls the handler's auth_<MECHANISM> methods in place of its own)."""

    submission = True

    def __init__(self, app: MailApp, logins: MailLogins) -> None:
        super().__init__(app)
        self.logins = logins

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._auth(server, await SMTP.auth_PLAIN(server, None, args))

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._auth(server, await SMTP.auth_LOGIN(server, None, args))

    async def _auth(self, server: SMTP, parsed: AuthResult) -> AuthResult:
        """`parsed` is aiosmtpd's decoding of the exchange (its authenticator only hands the
        login and password back, see `pass_through`); identity decides."""
        if not parsed.success or not isinstance(parsed.auth_data, LoginPassword):
            return parsed
        login = parsed.auth_data.login.decode("utf-8", "replace")
        password = parsed.auth_data.password.decode("utf-8", "replace")
        done = await self.logins.check(login, password, _peer(server), "SMTP")
        if done.outcome is Outcome.BLOCKED:
            await server.push("454 4.7.0 Too many failed logins from your address, try later")
            return AuthResult(success=False, handled=True)
        if done.outcome is Outcome.UNAVAILABLE:
            await server.push("454 4.7.0 Temporary authentication failure, try again later")
            return AuthResult(success=False, handled=True)
        if done.outcome is Outcome.APP_PASSWORD_REQUIRED:
            # Gmail's answer in the same case; RFC 4954's 534 5.7.9 "mechanism too weak".
            await server.push(
                "534 5.7.9 Application-specific password required: two-step verification is on"
                " for this account (create an app password)"
            )
            return AuthResult(success=False, handled=True)
        if done.outcome is Outcome.REFUSED:
            failures = getattr(server, "lgsp_auth_failures", 0) + 1
            server.lgsp_auth_failures = failures  # type: ignore[attr-defined]
            if failures >= MAX_AUTH_FAILURES:
                await server.push("421 4.7.0 Too many failed authentications, closing")
                if server.transport is not None:
                    server.transport.close()
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=done.user_id)


def pass_through(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    """aiosmtpd's (synchronous) authenticator: hands the decoded login back to the handler's
    async `_auth`, which asks identity without blocking the event loop."""
    return AuthResult(success=True, handled=False, auth_data=data)


def _summary(raw: bytes) -> Summary | None:
    try:
        return parse_summary(raw)
    except TooComplex:
        raise
    except Exception:  # it reads what it can of malformed mail: this would be a bug
        log.exception("could not parse a message")
        return None


def _reverse_path(envelope: Envelope) -> str:
    """MAIL FROM's address; "" for the null reverse-path of bounces (RFC 5321 §4.5.5),
    which aiosmtpd keeps as "<>"."""
    sender = (envelope.mail_from or "").strip()
    return "" if sender == "<>" else sender


def _peer(server: SMTP) -> str:
    peer = server.session.peer if server.session else None
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _received(server: SMTP, session: Session, submission: bool) -> bytes:
    """The trace header RFC 5321 §4.4 asks every server to prepend."""
    proto = ("ESMTPSA" if session.authenticated else "ESMTPS") if server._tls_protocol else "ESMTP"
    helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:100]
    line = (
        f"Received: from {helo} ({_peer(server)}) by {server.hostname} with {proto}; "
        f"{email.utils.formatdate(localtime=False)}\r\n"
    )
    return line.encode("ascii", "replace")


def smtp_task(
    app: MailApp,
    *,
    host: str,
    port: int,
    hostname: str,
    tls: ssl.SSLContext,
    submission: bool,
    logins: MailLogins | None = None,
    checks: InboundChecks | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """A background task (lgsp.plugins.Background) serving one SMTP port until stop."""
    if submission:
        assert logins is not None, "submission needs identity's password check"
        handler: MailHandler = SubmissionHandler(app, logins)
    else:
        handler = MailHandler(app, checks)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname=hostname,
            ident="LGSP mail",
            data_size_limit=app.rules.max_message_bytes,
            tls_context=tls,
            require_starttls=submission,
            auth_required=submission,
            auth_require_tls=True,
            authenticator=pass_through,
            # Inbound: no AUTH at all (the builtin mechanisms would be offered otherwise).
            auth_exclude_mechanism=() if submission else ("LOGIN", "PLAIN"),
            decode_data=False,
            enable_SMTPUTF8=True,
        )

    async def serve(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, host=host, port=port)
        bound = server.sockets[0].getsockname()[1]
        log.info(
            "SMTP %s listening on %s:%d", "submission" if submission else "inbound", host, bound
        )
        if on_listening is not None:
            on_listening(bound)
        try:
            await stop.wait()
        finally:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except TimeoutError:
                pass

    serve.__name__ = f"smtp-{'submission' if submission else 'inbound'}"
    return serve
