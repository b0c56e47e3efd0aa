"""What every group of mail use cases shares: the engine, the agency tree (mail domains), the
limits, the clock, and `_open`, the one check every read or write of a mailbox passes.

    the owner and the delegates of a mailbox   read it, send from it, file and flag its mail
    admin / agency_admin (agency or a parent)  create, change and list mailboxes; never read
    nobody else                                PERMISSION_DENIED
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from lgsp.agencies import Agency
from lgsp.auth import Principal
from lgsp.db import UnitOfWork
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import normalize_address, split
from services.mail.domain.errors import Forbidden, NotFound
from services.mail.domain.mailbox import Mailbox
from services.mail.service_layer.changes import Changes

SOURCE = "mail"
ADMINS = ("admin", "agency_admin")


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


class AppBase:
    def __init__(
        self,
        engine: Engine,
        agencies: AgencyDirectory,
        rules: MailRules,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.agencies = agencies
        self.rules = rules
        self.clock = clock
        self.after_commit = after_commit
        # Mailboxes changed, told after each commit (IMAP sessions wait on it).
        self.changes = Changes()

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, source=SOURCE)

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
