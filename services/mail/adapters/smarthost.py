"""The smarthost client: Python's smtplib (RFC 5321), one connection per relay pass, run in
a worker thread by the relay. STARTTLS (RFC 3207) per [mail] smarthost_tls:

    opportunistic  STARTTLS when offered, certificate not verified (Postfix's "may": it
                   protects against eavesdropping, not against an active attacker)
    required       STARTTLS must be offered and the certificate must verify for the host
                   name ([mail] smarthost_ca_file or the system's CAs); else nothing is sent
                   and the rows wait for the next attempt
    none           plain text (a smarthost on the same host or a trusted network)

AUTH ([mail] smarthost_user/password) only over TLS, unless smarthost_tls = "none".
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Sequence

from services.mail.domain.outbound import NOT_TRIED, Envelope, Outcome

TIMEOUT_S = 60.0


class Smarthost:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "opportunistic",
        ca_file: str = "",
        user: str = "",
        password: str = "",
        helo: str = "localhost",
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.host, self.port = host, port
        self.tls, self.ca_file = tls, ca_file
        self.user, self.password = user, password
        self.helo, self.timeout = helo, timeout

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        if self.tls == "required":
            return ssl.create_default_context(cafile=self.ca_file or None)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _open(self) -> smtplib.SMTP:
        s = smtplib.SMTP(self.host, self.port, local_hostname=self.helo, timeout=self.timeout)
        try:
            s.ehlo()
            if self.tls != "none":
                if s.has_extn("starttls"):
                    s.starttls(context=self._context())
                    s.ehlo()
                elif self.tls == "required":
                    raise smtplib.SMTPNotSupportedError("the smarthost offers no STARTTLS")
            if self.user:
                if (
                    self.tls != "none"
                    and s.sock is not None
                    and not isinstance(s.sock, ssl.SSLSocket)
                ):
                    raise smtplib.SMTPNotSupportedError("no TLS: AUTH withheld")
                s.login(self.user, self.password)
        except BaseException:
            s.close()
            raise
        return s

    def send(self, envelopes: Sequence[Envelope], deadline: float) -> list[Outcome]:
        try:
            s = self._open()
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            return [Outcome(0, f"smarthost {self.name}: {_text(e)}")] * len(envelopes)
        out: list[Outcome] = []
        try:
            for env in envelopes:
                if time.monotonic() > deadline:  # the claim's lease is ending: next pass
                    late = Outcome(NOT_TRIED, "not tried: the relay's lease was ending")
                    out.extend([late] * (len(envelopes) - len(out)))
                    break
                try:
                    out.append(self._one(s, env))
                except (OSError, smtplib.SMTPServerDisconnected) as e:
                    lost = Outcome(0, f"connection to {self.name} lost: {_text(e)}")
                    out.extend([lost] * (len(envelopes) - len(out)))
                    return out
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass
            return out
        finally:
            s.close()

    def _one(self, s: smtplib.SMTP, env: Envelope) -> Outcome:
        options = ["BODY=8BITMIME"] if s.has_extn("8bitmime") and not env.raw.isascii() else []
        for step, args in (("mail", (env.mail_from, options)), ("rcpt", (env.rcpt_to, []))):
            code, text = getattr(s, step)(*args)
            if code not in (250, 251):
                _reset(s)
                return Outcome(code, _decode(text), self.host)
        try:
            code, text = s.data(env.raw)
        except smtplib.SMTPDataError as e:  # DATA itself refused (no 354)
            _reset(s)
            return Outcome(e.smtp_code, _decode(e.smtp_error), self.host)
        if code != 250:
            _reset(s)
        return Outcome(code, _decode(text), self.host)


def _reset(s: smtplib.SMTP) -> None:
    try:
        s.rset()
    except smtplib.SMTPException:
        pass


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _text(e: BaseException) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        return f"{e.smtp_code} {_decode(e.smtp_error)}"
    return str(e) or type(e).__name__
