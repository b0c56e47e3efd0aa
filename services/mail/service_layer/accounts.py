"""Mailboxes: made, renamed, disabled and re-enabled from identity's account events, purged
after the retention period, and managed by administrators (CreateMailbox, UpdateMailbox,
ListMailboxes, GetMailbox)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from lgsp.api.identity.v1 import identity_pb2
from lgsp.auth import Principal, require_role
from lgsp.db import UnitOfWork
from services.mail.adapters.proto import mailbox_created
from services.mail.adapters.store import MailStore
from services.mail.domain.addresses import (
    MAX_DISPLAY_NAME,
    check_header_text,
    local_part_for,
    normalize_address,
    numbered,
)
from services.mail.domain.errors import AlreadyExists, InvalidField, NotFound, StaleEtag
from services.mail.domain.mailbox import Kind, Mailbox, Status, standard_folders
from services.mail.service_layer.base import ADMINS, AppBase

MAILBOX_FIELDS = {"display_name", "delegate_user_ids", "quota_bytes", "status", "daily_digest"}
OWNER_FIELDS = {"daily_digest"}  # what the owner of a mailbox may change themselves
MAX_PAGE = 500


class Accounts(AppBase):
    # --- identity's events (called by the consumer inside its unit of work) ---------------

    def on_user(self, uow: UnitOfWork, user: identity_pb2.User, actor_id: str = "") -> Mailbox:
        """UserCreated / UserUpdated: follow the official; give them a mailbox if they have
        none yet (the same user always keeps the address they were first given)."""
        store = MailStore(uow.session)
        now = self.clock()
        active = user.status == identity_pb2.USER_STATUS_ACTIVE
        roles = [[identity_pb2.Role.Name(g.role), g.agency_code] for g in user.role_grants]
        store.put_user(
            user.id, user.username, user.display_name, user.agency_code, active, roles, now
        )
        mb = store.mailbox_of(user.id)
        if mb is None:
            mb = self._new_personal(store, user, now)
            uow.emit(mailbox_created(mb, actor_id), subject=mb.address)
            return mb
        version = mb.version
        mb.display_name = user.display_name or mb.display_name
        mb.agency_code = user.agency_code or mb.agency_code
        self._follow_status(mb, active, now)
        store.save_mailbox(mb, version)
        return mb

    def on_user_active(self, uow: UnitOfWork, user_id: str, active: bool) -> None:
        """UserDisabled / UserEnabled (a locked account keeps receiving mail)."""
        store = MailStore(uow.session)
        now = self.clock()
        store.set_user_active(user_id, active, now)
        mb = store.mailbox_of(user_id)
        if mb is not None:
            version = mb.version
            self._follow_status(mb, active, now)
            store.save_mailbox(mb, version)

    @staticmethod
    def _follow_status(mb: Mailbox, active: bool, now: datetime) -> None:
        if mb.purged:
            return  # a purged mailbox stays a tombstone: its mail is gone
        if active and mb.status is Status.DISABLED:
            mb.status, mb.disabled_time = Status.ACTIVE, None
        elif not active and mb.status is Status.ACTIVE:
            mb.status, mb.disabled_time = Status.DISABLED, now

    def _new_personal(self, store: MailStore, user: identity_pb2.User, now: datetime) -> Mailbox:
        domain = self.domain_of(user.agency_code)
        base = local_part_for(user.display_name or user.username)
        taken = store.taken(base, domain)
        n = 0
        while f"{numbered(base, n)}@{domain}" in taken:
            n += 1
        mb = Mailbox(
            address=f"{numbered(base, n)}@{domain}",
            display_name=user.display_name or user.username,
            kind=Kind.PERSONAL,
            agency_code=user.agency_code,
            owner_user_id=user.id,
            quota_bytes=self.rules.quota_bytes,
            create_time=now,
        )
        self._add(store, mb)
        return mb

    @staticmethod
    def _add(store: MailStore, mb: Mailbox) -> None:
        store.add_mailbox(mb)
        for folder in standard_folders(mb.address):
            store.add_folder(folder)

    def purge_expired(self) -> list[str]:
        """Delete the mail of mailboxes disabled longer than the retention period; the
        addresses stay reserved. Returns the purged addresses."""
        cutoff = self.clock() - timedelta(days=self.rules.retention_days)
        purged = []
        with self.uow() as uow:
            store = MailStore(uow.session)
            for mb in store.disabled_before(cutoff):
                for message_id in store.message_ids(mb.address):
                    found = store.message(mb.address, message_id)
                    if found is not None:
                        store.delete_message(found)
                version = mb.version
                mb.purged, mb.used_bytes = True, 0
                store.save_mailbox(mb, version)
                purged.append(mb.address)
            if purged:
                uow.commit()
        return purged

    def login_name(self, login: str) -> str:
        """The identity username an SMTP login names: officials log in with their mail
        address or their username; "" for an address no official owns."""
        if "@" not in login:
            return login
        with self.reading() as store:
            mb = store.mailbox(login.lower())
            user = store.user(mb.owner_user_id) if mb is not None and mb.owner_user_id else None
        return str(user["username"]) if user else ""

    # --- administrators --------------------------------------------------------------------

    def create_mailbox(self, principal: Principal, mb: Mailbox) -> Mailbox:
        """An agency, shared or system mailbox (personal ones come from identity)."""
        mb.address = normalize_address(mb.address, "mailbox.address")
        if not mb.agency_code.strip():
            raise InvalidField("mailbox.agency_code", "required")
        if self.agencies.get(mb.agency_code) is None:
            raise InvalidField("mailbox.agency_code", f"no agency {mb.agency_code}")
        require_role(ADMINS, mb.agency_code, tree=self.agencies, principal=principal)
        if mb.kind not in (Kind.AGENCY, Kind.SHARED, Kind.SYSTEM):
            raise InvalidField(
                "mailbox.kind", "AGENCY, SHARED or SYSTEM (personal ones follow identity)"
            )
        if not self.is_local(mb.address):
            raise InvalidField("mailbox.address", "not on one of the province's mail domains")
        check_header_text("mailbox.display_name", mb.display_name, MAX_DISPLAY_NAME)
        if mb.quota_bytes < 0:
            raise InvalidField("mailbox.quota_bytes", "0 (unlimited) or more")
        mb.quota_bytes = mb.quota_bytes or self.rules.quota_bytes
        mb.create_time, mb.used_bytes, mb.status, mb.version = self.clock(), 0, Status.ACTIVE, 1
        with self.uow() as uow:
            store = MailStore(uow.session)
            if store.mailbox(mb.address) is not None:
                raise AlreadyExists(f"the address {mb.address} is taken")
            if mb.kind is Kind.AGENCY:  # its clerks open it (vanthu.py)
                mb.clerk_user_ids = store.clerks_of(mb.agency_code)
            self._add(store, mb)
            uow.emit(mailbox_created(mb, principal.subject), subject=mb.address)
            uow.commit()
        self.after_commit()
        return mb

    def update_mailbox(
        self, principal: Principal, changed: Mailbox, etag: str, mask: Sequence[str]
    ) -> Mailbox:
        unknown = set(mask) - MAILBOX_FIELDS
        if not mask or unknown:
            raise InvalidField("update_mask", f"name some of {sorted(MAILBOX_FIELDS)}")
        with self.uow() as uow:
            store = MailStore(uow.session)
            mb = store.mailbox(normalize_address(changed.address, "mailbox.address"))
            if mb is None:
                raise NotFound(f"no mailbox {changed.address}")
            own = bool(mb.owner_user_id) and mb.owner_user_id == principal.subject
            if not (own and set(mask) <= OWNER_FIELDS):
                require_role(ADMINS, mb.agency_code, tree=self.agencies, principal=principal)
            if etag and etag != mb.etag:
                raise StaleEtag(f"mailbox {mb.address} changed since it was read")
            version = mb.version
            if "display_name" in mask:
                mb.display_name = check_header_text(
                    "mailbox.display_name", changed.display_name, MAX_DISPLAY_NAME
                )
            if "delegate_user_ids" in mask:
                mb.delegate_user_ids = sorted({u for u in changed.delegate_user_ids if u})
            if "quota_bytes" in mask:
                if changed.quota_bytes < 0:
                    raise InvalidField("mailbox.quota_bytes", "0 (unlimited) or more")
                mb.quota_bytes = changed.quota_bytes
            if "daily_digest" in mask:
                mb.daily_digest = changed.daily_digest
            if "status" in mask:
                if changed.status not in (Status.ACTIVE, Status.DISABLED):
                    raise InvalidField("mailbox.status", "ACTIVE or DISABLED")
                self._follow_status(mb, changed.status is Status.ACTIVE, self.clock())
            store.save_mailbox(mb, version)
            uow.commit()
        return mb

    def get_mailbox(self, principal: Principal, address: str) -> Mailbox:
        address = normalize_address(address, "address")
        with self.uow() as uow:
            mb = MailStore(uow.session).mailbox(address)
        if mb is None or not (
            mb.may_open(principal.subject)
            or principal.has_any_role(ADMINS, mb.agency_code, tree=self.agencies)
        ):
            # Someone else's mailbox reads as absent: no directory of who has one.
            raise NotFound(f"no mailbox {address}")
        return mb

    def list_mailboxes(
        self,
        principal: Principal,
        *,
        agency_code: str,
        kind: int,
        query: str,
        page_token: str,
        page_size: int,
    ) -> tuple[list[Mailbox], str]:
        """An administrator's listing of an agency's mailboxes; anyone else's lists only the
        mailboxes they may open."""
        limit = min(page_size or 50, MAX_PAGE)
        if page_size < 0:
            raise InvalidField("page_size", "0 or more")
        admin = bool(agency_code) and principal.has_any_role(
            ADMINS, agency_code, tree=self.agencies
        )
        with self.uow() as uow:
            store = MailStore(uow.session)
            out: list[Mailbox] = []
            after = page_token
            while len(out) < limit:
                page = store.list_mailboxes(
                    agency_code=agency_code, kind=kind, query=query, after=after, limit=limit
                )
                out.extend(m for m in page if admin or m.may_open(principal.subject))
                if len(page) < limit:
                    after = ""
                    break
                after = page[-1].address
        out = out[:limit]
        return out, (out[-1].address if after and out else "")
