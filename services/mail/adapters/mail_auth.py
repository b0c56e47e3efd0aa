"""SPF (RFC 7208, pyspf) and DKIM (RFC 6376, dkimpy) checks of mail coming in, with every
DNS lookup through one resolver ([mail] dns_resolver, else the system's) and one time budget
per message: a slow or dead DNS server gives `temperror`, never a stalled SMTP session.

pyspf has no resolver parameter: it calls its module's `DNSLookup` function. That function is
replaced once by `_spf_lookup`, which uses the resolver of the check running in this thread
(a context variable) and pyspf's own when none is set, so other users of pyspf in the process
are unaffected.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver
import spf

from services.mail.domain.authresults import Authentication, header_value
from services.mail.settings import host_port

log = logging.getLogger("services.mail.auth")

DEFAULT_BUDGET_S = 5.0
_current: contextvars.ContextVar[dns.resolver.Resolver | None] = contextvars.ContextVar(
    "lgsp_mail_resolver", default=None
)
_pyspf_lookup: Callable[..., Any] = spf.DNSLookup


class DnsTempError(Exception):
    """A lookup timed out or no server answered."""


def _spf_lookup(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> Any:
    resolver = _current.get()
    if resolver is None:
        return _pyspf_lookup(name, qtype, strict, timeout)
    out: list[Any] = []
    try:
        answer = resolver.resolve(name, qtype, lifetime=timeout, search=False)
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return out
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as e:
        raise spf.TempError(f"DNS {e}") from None
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            out.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            out.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            out.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            out.append(((name, qtype), rdata.strings))
    return out


spf.DNSLookup = _spf_lookup


def make_resolver(setting: str) -> dns.resolver.Resolver:
    """[mail] dns_resolver "host:port", or "" for the system's configuration."""
    if not setting:
        return dns.resolver.Resolver()
    host, port = host_port(setting)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    return resolver


class InboundChecks:
    """SPF and DKIM of one message, recorded (never enforced: docs/mail.md)."""

    def __init__(
        self, resolver: dns.resolver.Resolver, authserv_id: str, budget_s: float = DEFAULT_BUDGET_S
    ) -> None:
        self.resolver = resolver
        self.authserv_id = authserv_id
        self.budget_s = budget_s

    def check(self, raw: bytes, client_ip: str, helo: str, mail_from: str) -> Authentication:
        """Blocking (DNS): run it in a worker thread. Never raises."""
        deadline = time.monotonic() + self.budget_s
        token = _current.set(self.resolver)
        try:
            spf_result = self._spf(client_ip, helo, mail_from, deadline)
        finally:
            _current.reset(token)
        dkim_result, d, s = self._dkim(raw, deadline)
        summary = header_value(
            self.authserv_id,
            spf=spf_result,
            mail_from=mail_from,
            helo=helo,
            dkim=dkim_result,
            dkim_domain=d,
            dkim_selector=s,
            client_ip=client_ip,
        )
        return Authentication(spf_result, dkim_result, summary)

    def _spf(self, ip: str, helo: str, mail_from: str, deadline: float) -> str:
        # RFC 7208 §2.4: with the null reverse-path, check postmaster@<HELO name>.
        sender = mail_from or f"postmaster@{helo}"
        try:
            budget = max(0.1, deadline - time.monotonic())
            result, _code, _why = spf.query(
                i=ip, s=sender, h=helo, timeout=budget, querytime=budget
            ).check()
        except Exception:  # pyspf on hostile input: never break a delivery over it
            log.warning("SPF check failed for %s from %s", sender[:100], ip, exc_info=True)
            return "temperror"
        return str(result) if result in _WORDS else "permerror"

    def _dkim(self, raw: bytes, deadline: float) -> tuple[str, str, str]:
        """(result, d=, s=) of the first DKIM-Signature (RFC 6376 §6.1: "none" without)."""
        empty: list[bool] = []

        def txt(name: bytes | str, timeout: float = 5) -> bytes | None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DnsTempError("DNS time budget used up")
            qname = name.decode() if isinstance(name, bytes) else name
            try:
                answer = self.resolver.resolve(
                    qname, dns.rdatatype.TXT, lifetime=min(timeout, left), search=False
                )
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                empty.append(True)
                return None
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as e:
                raise DnsTempError(str(e)) from None
            return b"".join(next(iter(answer)).strings)

        domain = selector = ""
        try:
            d = dkim.DKIM(raw, minkey=1024)
            prep = d.verify_headerprep(0)
            if not prep:
                return "none", "", ""
            domain, selector = _tag(prep[0], b"d"), _tag(prep[0], b"s")
            ok = d.verify(0, dnsfunc=txt)
            result = "pass" if ok else "permerror" if empty else "fail"
        except DnsTempError:
            result = "temperror"
        except dkim.ValidationError as e:
            # A body altered after signing is a signature that failed to verify (fail); a
            # malformed one cannot be checked at all (permerror). RFC 8601 §2.7.1.
            result = "fail" if "body hash" in str(e) else "permerror"
        except dkim.DKIMException:
            result = "permerror"  # a malformed signature or key
        except Exception:
            log.warning("DKIM check failed", exc_info=True)
            result = "permerror"
        return result, domain, selector


_WORDS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


def _tag(sig: dict[bytes, bytes], name: bytes) -> str:
    return sig.get(name, b"").decode("ascii", "replace")
