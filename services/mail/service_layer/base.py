"""What every group of mail use cases shares: the engine, the agency tree (mail domains), the
limits, the clock, and `_open`, the one check every read or write of a mailbox passes.

    the owner and the delegates of a mailbox   read it, send from it, file and flag its mail
    admin / agency_admin (agency or a parent)  create, change and list mailboxes; never read
    nobody else                                PERMISSION_DENIED
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lgsp.agencies import Agency
from lgsp.auth import Principal
from lgsp.db import UnitOfWork
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import normalize_address, split
from services.mail.domain.errors import Forbidden, NotFound
from services.mail.domain.mailbox import Mailbox
from services.mail.domain.message import Summary
from services.mail.domain.smime import SignatureCheck, Signer
from services.mail.service_layer.changes import Changes

SOURCE = "mail"
ADMINS = ("admin", "agency_admin")


class Smime(Protocol):
    """adapters/smime.py: S/MIME signing and verification with the CA."""

    def sign(self, data: bytes, who: Signer) -> bytes: ...

    def verify(self, raw: bytes) -> SignatureCheck: ...


class AgencyDirectory(Protocol):
    """lgsp.agencies: identity's tree in production, a static one in tests."""

    def get(self, code: str) -> Agency | None: ...

    def ancestors(self, code: str) -> Sequence[str]: ...

    def codes(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class MailRules:
    """The [mail] settings the use cases apply."""

    default_domain: str = "hatinh.gov.vn"
    quota_bytes: int = 2048 * 1024 * 1024
    max_message_bytes: int = 25 * 1024 * 1024
    max_recipients: int = 100
    retention_days: int = 90
    # The name this server gives itself (SMTP greeting, DSNs' Reporting-MTA).
    hostname: str = "localhost"
    # Notices (service_layer/notices.py): the sender, the citizen's lookup page, reminders
    # and the daily digest.
    notice_address: str = ""  # "" = thongbao@<default_domain>
    notice_sender_name: str = "Hệ thống LGSP tỉnh Hà Tĩnh"
    dossier_lookup_url: str = ""
    task_reminder_days: int = 1
    digest_hour: int = 7


class AppBase:
    def __init__(
        self,
        engine: Engine,
        agencies: AgencyDirectory,
        rules: MailRules,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_commit: Callable[[], None] = lambda: None,
        smime: Smime | None = None,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.rules = rules
        self.clock = clock
        self.after_commit = after_commit
        self.smime = smime
        # SQLite has one writer at a time: deliveries queue for it on this lock, in order,
        # rather than in SQLite's busy handler, which polls with sleeps growing to 100 ms
        # (measured: a third of the throughput and most of the p99, bench/_mail_smtp.py).
        self._one_writer = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        # Mailboxes changed, told after each commit (IMAP sessions wait on it).
        self.changes = Changes()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, source=SOURCE)

    @contextmanager
    def reading(self) -> Iterator[MailStore]:
        """The store for lookups that write nothing (SMTP's MAIL and RCPT checks): a deferred
        transaction, where a UnitOfWork begins IMMEDIATE and so queues behind every delivery
        for SQLite's write lock (WAL readers never wait)."""
        with Session(self.engine) as session:
            yield MailStore(session)

    # --- domains ---------------------------------------------------------------------------

    def domain_of(self, agency_code: str) -> str:
        """The agency's mail domain: its own, else the nearest parent's, else the
        province's default (docs/mail.md, "Addresses")."""
        for code in (agency_code, *self.agencies.ancestors(agency_code)):
            agency = self.agencies.get(code)
            if agency is not None and agency.mail_domain:
                return agency.mail_domain.lower()
        return self.rules.default_domain

    def local_domains(self) -> set[str]:
        found = {self.rules.default_domain}
        for code in self.agencies.codes():
            agency = self.agencies.get(code)
            if agency is not None and agency.mail_domain:
                found.add(agency.mail_domain.lower())
        return found

    def is_local(self, address: str) -> bool:
        return split(address)[1] in self.local_domains()

    def on_local_delivery(self, uow: UnitOfWork, mb: Mailbox, summary: Summary) -> None:
        """Called by a delivery in its unit of work for each local mailbox it stored into
        (vanthu.py tells an agency mailbox's clerks)."""

    # --- access ----------------------------------------------------------------------------

    def _open(self, store: MailStore, principal: Principal, address: str) -> Mailbox:
        """The mailbox at `address` if the caller may open it."""
        address = normalize_address(address, "mailbox_address")
        mb = store.mailbox(address)
        if mb is None or mb.purged:
            raise NotFound(f"no mailbox {address}")
        if not mb.may_open(principal.subject):
            raise Forbidden(f"mailbox {address} is not yours")
        return mb
